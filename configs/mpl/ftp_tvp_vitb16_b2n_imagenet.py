# FTP + TVP (mutual prompt learning, reconstruction) on ImageNet
# base-to-new, ViT-B/16; see configs/mpl/README.md.
# Batch 1 x 500 base classes = 500 prompted sequences per step: the
# text blocks are recomputed in backward (less memory).
_base_ = [
    './_base_/ftp_tvp_vitb16.py', '../_base_/datasets/imagenet_b2n.py'
]
train_dataloader = dict(batch_size=1)
model = dict(clip=dict(grad_checkpointing=True))
