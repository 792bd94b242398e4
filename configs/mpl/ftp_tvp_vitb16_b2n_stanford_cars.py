# FTP + TVP (mutual prompt learning, reconstruction) on StanfordCars
# base-to-new, ViT-B/16; see configs/mpl/README.md.
# Batch 1 x 98 base classes = 98 prompted sequences per step.
_base_ = [
    './_base_/ftp_tvp_vitb16.py', '../_base_/datasets/stanford_cars_b2n.py'
]
train_dataloader = dict(batch_size=1)
