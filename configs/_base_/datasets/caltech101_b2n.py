# Caltech101 base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/caltech-101/: 101_ObjectCategories/<class>/*,
#   split_zhou_Caltech101.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpCaltech101', data_root='data/caltech-101')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
