# CTP + TFT (task-oriented mutual learning, reconstruction) on ImageNet
# base-to-new, ViT-B/16; see configs/tomm/README.md.
# Batch 1 x 500 base classes = 500 prompted sequences per step: the
# text blocks are recomputed in backward (less memory).
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/imagenet_b2n.py'
]
train_dataloader = dict(batch_size=1)
model = dict(clip=dict(grad_checkpointing=True))
