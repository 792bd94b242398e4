# FGVCAircraft base-to-new. Data root = the dataset folder in the CoOp layout:
#   data/fgvc_aircraft/: images/*.jpg, variants.txt,
#   images_variant_{train,val,test}.txt
_base_ = ['./b2n.py']

reader = dict(type='CoOpFGVCAircraft', data_root='data/fgvc_aircraft')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
