# DTD few-shot (all classes, 16 shots; metric dtd/accuracy/top1).
# Data root: data/dtd/: images/<class>/*.jpg,
#   split_zhou_DescribableTextures.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpDTD', data_root='data/dtd')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(dtd=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
