# SUN397 base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/sun397/: SUN397/<l>/<class>/*.jpg, split_zhou_SUN397.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpSUN397', data_root='data/sun397')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
