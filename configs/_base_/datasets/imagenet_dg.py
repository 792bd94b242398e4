# Domain generalisation (PROTOCOL.md): the model trained on ImageNet (all
# 1000 classes, 16 shots, as for cross-dataset transfer), evaluated by
# tools/test.py on ImageNet (the source) and ImageNetV2, -Sketch, -A and -R
# in one run, each with its own class names: imagenet/accuracy/top1,
# imagenetv2/..., imagenet_sketch/..., imagenet_a/..., imagenet_r/...
# (A and R: their 200-class subsets, labelled in sorted-wnid order).
# Data roots (CoOp layout, each with its own classnames.txt --
# prepare_data.py --make-classnames):
#   data/imagenetv2/imagenetv2-matched-frequency-format-val/<0..999>/
#   data/imagenet-sketch/images/<wnid>/
#   data/imagenet-adversarial/imagenet-a/<wnid>/
#   data/imagenet-rendition/imagenet-r/<wnid>/
_base_ = ['./imagenet_fewshot.py']

protocol = 'dg'


def _variant(reader, folder):
    return dict(_base_.test_loader,
                dataset=dict(_base_.test_loader.dataset, type=reader,
                             data_root=f'data/{folder}'))


test_dataloader = dict(
    imagenet=_base_.val_dataloader.imagenet,
    imagenetv2=_variant('CoOpImageNetV2', 'imagenetv2'),
    imagenet_sketch=_variant('CoOpImageNetSketch', 'imagenet-sketch'),
    imagenet_a=_variant('CoOpImageNetA', 'imagenet-adversarial'),
    imagenet_r=_variant('CoOpImageNetR', 'imagenet-rendition'))
