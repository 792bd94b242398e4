# StanfordCars few-shot (all classes, 16 shots; metric
#   stanford_cars/accuracy/top1).
# Data root: data/stanford_cars/: cars_{train,test}/*.jpg,
#   split_zhou_StanfordCars.json
_base_ = ['./fewshot.py']

reader = dict(type='CoOpStanfordCars', data_root='data/stanford_cars')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(stanford_cars=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
