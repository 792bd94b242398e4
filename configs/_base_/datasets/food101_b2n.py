# Food101 base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/food-101/: images/<class>/*.jpg, split_zhou_Food101.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpFood101', data_root='data/food-101')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
