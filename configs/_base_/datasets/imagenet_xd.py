# Cross-dataset transfer (PROTOCOL.md): train on ImageNet (all 1000 classes,
# 16 shots; the end of training evaluates ImageNet), then tools/test.py
# evaluates ImageNet (the source) and the 10 target datasets in one run,
# each with its own class names: imagenet/accuracy/top1,
# caltech101/accuracy/top1, ..., ucf101/accuracy/top1. Data roots: the
# benchmark layout under data/ (docs/datasets.md); tools/run_benchmark.py
# --data-root moves them all.
_base_ = ['./imagenet_fewshot.py']

protocol = 'xd'


def _target(reader, folder):
    return dict(_base_.test_loader,
                dataset=dict(_base_.test_loader.dataset, type=reader,
                             data_root=f'data/{folder}'))


test_dataloader = dict(
    imagenet=_base_.val_dataloader.imagenet,
    caltech101=_target('CoOpCaltech101', 'caltech-101'),
    oxford_pets=_target('CoOpOxfordPets', 'oxford_pets'),
    stanford_cars=_target('CoOpStanfordCars', 'stanford_cars'),
    flowers102=_target('CoOpFlowers102', 'oxford_flowers'),
    food101=_target('CoOpFood101', 'food-101'),
    fgvc_aircraft=_target('CoOpFGVCAircraft', 'fgvc_aircraft'),
    sun397=_target('CoOpSUN397', 'sun397'),
    dtd=_target('CoOpDTD', 'dtd'),
    eurosat=_target('CoOpEuroSAT', 'eurosat'),
    ucf101=_target('CoOpUCF101', 'ucf101'))
