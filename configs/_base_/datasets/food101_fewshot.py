# Food101 few-shot (all classes, 16 shots; metric food101/accuracy/top1).
# Data root: data/food-101/: images/<class>/*.jpg, split_zhou_Food101.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpFood101', data_root='data/food-101')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(food101=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
