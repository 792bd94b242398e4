# PromptSRC few-shot on SUN397 (all 397 classes, 16 shots), ViT-B/16. Other
# shot counts: docs/protocols.md.
_base_ = [
    './_base_/promptsrc_vitb16_fewshot.py',
    '../_base_/datasets/sun397_fewshot.py'
]
train_dataloader = dict(batch_size=4)
