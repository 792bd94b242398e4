# FTP + TVP (mutual prompt learning, reconstruction) on UCF101
# base-to-new, ViT-B/16; see configs/mpl/README.md.
# Batch 4 x 51 base classes = 204 prompted sequences per step.
_base_ = [
    './_base_/ftp_tvp_vitb16.py', '../_base_/datasets/ucf101_b2n.py'
]
train_dataloader = dict(batch_size=4)
