# EuroSAT few-shot (all classes, 16 shots; metric eurosat/accuracy/top1).
# Data root: data/eurosat/: 2750/<Class>/*.jpg, split_zhou_EuroSAT.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpEuroSAT', data_root='data/eurosat')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(eurosat=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
