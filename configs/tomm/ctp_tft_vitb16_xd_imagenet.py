# CTP + TFT (task-oriented mutual learning, reconstruction), cross-dataset
# transfer, ViT-B/16: trains on ImageNet (all 1000 classes, 16 shots);
# tools/test.py with this config evaluates ImageNet and the 10 target datasets
# in one run (docs/protocols.md). Batch 1 x 1000 classes = 1000 prompted
# sequences per step: the text blocks are recomputed in backward (grad
# checkpointing).
_base_ = ['./_base_/ctp_tft_vitb16.py', '../_base_/datasets/imagenet_xd.py']
train_dataloader = dict(batch_size=1)
model = dict(clip=dict(grad_checkpointing=True))
