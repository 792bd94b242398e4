# CTP + TFT (task-oriented mutual learning, reconstruction) few-shot on
# Caltech101 (all 100 classes, 16 shots), ViT-B/16. Batch 1 x 100 classes = 100
# prompted sequences per step. Other shot counts: docs/protocols.md.
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/caltech101_fewshot.py'
]
train_dataloader = dict(batch_size=1)
