# CoOp (Zhou et al., IJCV 2022) few-shot on UCF101 (all 101 classes, 16 shots),
# ViT-B/16. Other shot counts: docs/protocols.md.
_base_ = [
    './_base_/coop_vitb16_fewshot.py', '../_base_/datasets/ucf101_fewshot.py'
]
