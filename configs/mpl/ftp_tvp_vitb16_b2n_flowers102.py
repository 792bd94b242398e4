# FTP + TVP (mutual prompt learning, reconstruction) on Flowers102
# base-to-new, ViT-B/16; see configs/mpl/README.md.
# Batch 1 x 51 base classes = 51 prompted sequences per step.
_base_ = [
    './_base_/ftp_tvp_vitb16.py', '../_base_/datasets/flowers102_b2n.py'
]
train_dataloader = dict(batch_size=1)
