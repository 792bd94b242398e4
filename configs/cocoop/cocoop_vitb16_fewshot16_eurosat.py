# CoCoOp (Zhou et al., CVPR 2022) few-shot on EuroSAT (all 10 classes, 16
# shots), ViT-B/16. Other shot counts: docs/protocols.md.
_base_ = ['./_base_/cocoop_vitb16.py', '../_base_/datasets/eurosat_fewshot.py']
train_dataloader = dict(batch_size=1)
