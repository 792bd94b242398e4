# CTP + TFT (task-oriented mutual learning, reconstruction) few-shot on
# Flowers102 (all 102 classes, 16 shots), ViT-B/16. Batch 1 x 102 classes = 102
# prompted sequences per step. Other shot counts: docs/protocols.md.
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/flowers102_fewshot.py'
]
train_dataloader = dict(batch_size=1)
