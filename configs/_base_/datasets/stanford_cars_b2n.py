# StanfordCars base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/stanford_cars/: cars_{train,test}/*.jpg, split_zhou_StanfordCars.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpStanfordCars', data_root='data/stanford_cars')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
