# IVLP, domain generalisation, ViT-B/16: the ImageNet training of
# ivlp_vitb16_xd_imagenet.py; tools/test.py with this config evaluates
# ImageNet and ImageNetV2, -Sketch, -A and -R in one run (docs/protocols.md).
_base_ = ['./_base_/ivlp_vitb16.py', '../_base_/datasets/imagenet_dg.py']
train_dataloader = dict(batch_size=4)
