# ImageNet base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/imagenet/: images/{train,val}/<wnid>/*, classnames.txt
_base_ = ['./b2n.py']

reader = dict(type='CoOpImageNet', data_root='data/imagenet')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
