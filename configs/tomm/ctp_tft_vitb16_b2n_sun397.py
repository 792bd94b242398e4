# CTP + TFT (task-oriented mutual learning, reconstruction) on SUN397
# base-to-new, ViT-B/16; see configs/tomm/README.md.
# Batch 1 x 199 base classes = 199 prompted sequences per step.
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/sun397_b2n.py'
]
train_dataloader = dict(batch_size=1)
