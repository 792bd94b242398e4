# CTP + TFT (task-oriented mutual learning, reconstruction) few-shot on SUN397
# (all 397 classes, 16 shots), ViT-B/16. Batch 1 x 397 classes = 397 prompted
# sequences per step: the text blocks are recomputed in backward (grad
# checkpointing). Other shot counts: docs/protocols.md.
_base_ = ['./_base_/ctp_tft_vitb16.py', '../_base_/datasets/sun397_fewshot.py']
train_dataloader = dict(batch_size=1)
model = dict(clip=dict(grad_checkpointing=True))
