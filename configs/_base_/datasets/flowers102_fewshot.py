# Flowers102 few-shot (all classes, 16 shots; metric flowers102/accuracy/top1).
# Data root: data/oxford_flowers/: jpg/*.jpg, split_zhou_OxfordFlowers.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpFlowers102', data_root='data/oxford_flowers')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(flowers102=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
