# IVLP, cross-dataset transfer, ViT-B/16: trains on ImageNet (all 1000
# classes, 16 shots) with the base-to-new schedule (the project's choice);
# tools/test.py with this config evaluates ImageNet and the 10 target
# datasets in one run (docs/protocols.md).
_base_ = ['./_base_/ivlp_vitb16.py', '../_base_/datasets/imagenet_xd.py']
train_dataloader = dict(batch_size=4)
