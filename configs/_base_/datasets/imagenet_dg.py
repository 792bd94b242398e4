# Domain generalisation (PROTOCOL.md): the ImageNet-trained model on
# ImageNetV2, -Sketch, -A and -R in one test run; metrics
# imagenetv2/accuracy/top1, imagenet_sketch/..., imagenet_a/...,
# imagenet_r/... (A and R: 200 classes each). Data roots (CoOp layout, each
# with its own classnames.txt -- prepare_data.py --make-classnames):
#   data/imagenetv2/imagenetv2-matched-frequency-format-val/<0..999>/
#   data/imagenet-sketch/images/<wnid>/
#   data/imagenet-adversarial/imagenet-a/<wnid>/
#   data/imagenet-rendition/imagenet-r/<wnid>/
_base_ = ['./pipelines.py']

test_loader = dict(
    batch_size=100,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='test', pipeline={{_base_.test_pipeline}}))


def _variant(reader, folder):
    return dict(test_loader,
                dataset=dict(test_loader['dataset'], type=reader,
                             data_root=f'data/{folder}'))


test_dataloader = dict(
    imagenetv2=_variant('CoOpImageNetV2', 'imagenetv2'),
    imagenet_sketch=_variant('CoOpImageNetSketch', 'imagenet-sketch'),
    imagenet_a=_variant('CoOpImageNetA', 'imagenet-adversarial'),
    imagenet_r=_variant('CoOpImageNetR', 'imagenet-rendition'))
test_evaluator = dict(type='Accuracy', topk=(1, ))
