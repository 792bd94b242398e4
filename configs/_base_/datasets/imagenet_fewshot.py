# ImageNet few-shot (all classes, 16 shots; metric imagenet/accuracy/top1).
# Data root: data/imagenet/: images/{train,val}/<wnid>/*, classnames.txt
_base_ = ['./fewshot.py']

reader = dict(type='CoOpImageNet', data_root='data/imagenet')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(imagenet=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
