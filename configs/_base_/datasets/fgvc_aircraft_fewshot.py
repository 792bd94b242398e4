# FGVCAircraft few-shot (all classes, 16 shots; metric
#   fgvc_aircraft/accuracy/top1).
# Data root: data/fgvc_aircraft/: images/*.jpg, variants.txt,
#   images_variant_{train,val,test}.txt
_base_ = ['./fewshot.py']

reader = dict(type='CoOpFGVCAircraft', data_root='data/fgvc_aircraft')
train_dataloader = dict(dataset=dict(dataset=reader))
val_dataloader = dict(fgvc_aircraft=dict(
    _base_.test_loader, dataset=dict(_base_.test_loader.dataset, **reader)))
test_dataloader = val_dataloader
