# UCF101 base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/ucf101/: UCF-101-midframes/<Class>/*.jpg, split_zhou_UCF101.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpUCF101', data_root='data/ucf101')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
