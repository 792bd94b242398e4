# CoCoOp (Zhou et al., CVPR 2022) few-shot on ImageNet (all 1000 classes, 16
# shots), ViT-B/16. Other shot counts: docs/protocols.md.
_base_ = [
    './_base_/cocoop_vitb16.py', '../_base_/datasets/imagenet_fewshot.py'
]
train_dataloader = dict(batch_size=1)
