# SUN397 few-shot (all classes, 16 shots; metric sun397/accuracy/top1).
# Data root: data/sun397/: SUN397/<l>/<class>/*.jpg, split_zhou_SUN397.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpSUN397', data_root='data/sun397')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(sun397=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
