# Flowers102 base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/oxford_flowers/: jpg/*.jpg, split_zhou_OxfordFlowers.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpFlowers102', data_root='data/oxford_flowers')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
