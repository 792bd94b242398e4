# CTP + TFT (task-oriented mutual learning, reconstruction) on StanfordCars
# base-to-new, ViT-B/16; see configs/tomm/README.md.
# Batch 1 x 98 base classes = 98 prompted sequences per step.
_base_ = [
    './_base_/ctp_tft_vitb16.py', '../_base_/datasets/stanford_cars_b2n.py'
]
train_dataloader = dict(batch_size=1)
