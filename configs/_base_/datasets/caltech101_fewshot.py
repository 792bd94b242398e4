# Caltech101 few-shot (all classes, 16 shots; metric caltech101/accuracy/top1).
# Data root: data/caltech-101/: 101_ObjectCategories/<class>/*,
#   split_zhou_Caltech101.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpCaltech101', data_root='data/caltech-101')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(caltech101=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
