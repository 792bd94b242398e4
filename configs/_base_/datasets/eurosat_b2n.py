# EuroSAT base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/eurosat/2750/<Class>/*.jpg, data/eurosat/split_zhou_EuroSAT.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpEuroSAT', data_root='data/eurosat')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
