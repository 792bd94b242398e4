# CTP + TFT (task-oriented mutual learning, reconstruction), domain
# generalisation, ViT-B/16: the ImageNet training of
# ctp_tft_vitb16_xd_imagenet.py; tools/test.py with this config evaluates
# ImageNet and ImageNetV2, -Sketch, -A and -R in one run (docs/protocols.md).
_base_ = ['./_base_/ctp_tft_vitb16.py', '../_base_/datasets/imagenet_dg.py']
train_dataloader = dict(batch_size=1)
model = dict(clip=dict(grad_checkpointing=True))
