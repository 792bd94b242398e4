# OxfordPets few-shot (all classes, 16 shots; metric
#   oxford_pets/accuracy/top1).
# Data root: data/oxford_pets/: images/*.jpg, split_zhou_OxfordPets.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpOxfordPets', data_root='data/oxford_pets')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(oxford_pets=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
