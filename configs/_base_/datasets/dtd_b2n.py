# DTD base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/dtd/: images/<class>/*.jpg, split_zhou_DescribableTextures.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpDTD', data_root='data/dtd')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
