# CTP + TFT (task-oriented mutual learning, reconstruction) few-shot on
# ImageNet (all 1000 classes, 16 shots), ViT-B/16. Batch 1 x 1000 classes =
# 1000 prompted sequences per step: the text blocks are recomputed in backward
# (grad checkpointing). Other shot counts: docs/protocols.md.
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/imagenet_fewshot.py'
]
train_dataloader = dict(batch_size=1)
model = dict(clip=dict(grad_checkpointing=True))
