# IVLP few-shot on StanfordCars (all 196 classes, 16 shots), ViT-B/16. Other
# shot counts: docs/protocols.md.
_base_ = [
    './_base_/ivlp_vitb16_fewshot.py',
    '../_base_/datasets/stanford_cars_fewshot.py'
]
train_dataloader = dict(batch_size=4)
