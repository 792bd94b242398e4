# CoOp (Zhou et al., IJCV 2022), domain generalisation, ViT-B/16: the ImageNet
# training of coop_vitb16_xd_imagenet.py; tools/test.py with this config
# evaluates ImageNet and ImageNetV2, -Sketch, -A and -R in one run
# (docs/protocols.md).
_base_ = [
    './_base_/coop_vitb16_fewshot.py', '../_base_/datasets/imagenet_dg.py'
]
