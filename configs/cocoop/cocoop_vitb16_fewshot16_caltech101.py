# CoCoOp (Zhou et al., CVPR 2022) few-shot on Caltech101 (all 100 classes, 16
# shots), ViT-B/16. Other shot counts: docs/protocols.md.
_base_ = [
    './_base_/cocoop_vitb16.py', '../_base_/datasets/caltech101_fewshot.py'
]
train_dataloader = dict(batch_size=1)
