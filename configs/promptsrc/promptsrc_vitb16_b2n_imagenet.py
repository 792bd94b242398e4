# PromptSRC on ImageNet base-to-new, ViT-B/16 (method settings in _base_/).
_base_ = [
    './_base_/promptsrc_vitb16.py', '../_base_/datasets/imagenet_b2n.py'
]
train_dataloader = dict(batch_size=4)
