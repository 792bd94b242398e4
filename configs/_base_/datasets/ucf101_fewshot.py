# UCF101 few-shot (all classes, 16 shots; metric ucf101/accuracy/top1).
# Data root: data/ucf101/: UCF-101-midframes/<Class>/*.jpg,
#   split_zhou_UCF101.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpUCF101', data_root='data/ucf101')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(ucf101=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
