# OxfordPets base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/oxford_pets/: images/*.jpg, split_zhou_OxfordPets.json
_base_ = ['./b2n.py']

reader = dict(type='CoOpOxfordPets', data_root='data/oxford_pets')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
