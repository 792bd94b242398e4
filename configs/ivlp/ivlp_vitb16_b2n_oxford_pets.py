# IVLP on OxfordPets base-to-new, ViT-B/16 (method settings in _base_/).
_base_ = [
    './_base_/ivlp_vitb16.py', '../_base_/datasets/oxford_pets_b2n.py'
]
train_dataloader = dict(batch_size=4)
