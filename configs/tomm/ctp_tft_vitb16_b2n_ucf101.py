# CTP + TFT (task-oriented mutual learning, reconstruction) on UCF101
# base-to-new, ViT-B/16; see configs/tomm/README.md.
# Batch 1 x 51 base classes = 51 prompted sequences per step.
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/ucf101_b2n.py'
]
train_dataloader = dict(batch_size=1)
