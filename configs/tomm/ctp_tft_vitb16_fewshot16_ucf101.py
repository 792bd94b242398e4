# CTP + TFT (task-oriented mutual learning, reconstruction) few-shot on UCF101
# (all 101 classes, 16 shots), ViT-B/16. Batch 1 x 101 classes = 101 prompted
# sequences per step. Other shot counts: docs/protocols.md.
_base_ = ['./_base_/ctp_tft_vitb16.py', '../_base_/datasets/ucf101_fewshot.py']
train_dataloader = dict(batch_size=1)
