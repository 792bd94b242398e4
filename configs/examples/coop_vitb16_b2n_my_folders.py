# Your own data with mmpl's stack, from a config alone: CoOpFolderDataset
# reads one folder per class and splits it with CoOp's seeded rule (50% train
# / 20% val / 30% test per class; change with reader.split_seed);
# CoOpCustomDataset reads a split file in the CoOp JSON format
# (dict(type='CoOpCustomDataset', split_file='my_split.json', ...)).
#   data/my_dataset/<class>/*.jpg
_base_ = [
    '../_base_/models/clip_vitb16.py', '../_base_/datasets/b2n.py',
    '../_base_/schedules/sgd_warmup_cosine.py',
    '../_base_/default_runtime.py'
]
reader = dict(type='CoOpFolderDataset', data_root='data/my_dataset')
train_dataloader = dict(dataset=dict(dataset=dict(dataset=reader)))
val_dataloader = dict(
    base=dict(dataset=dict(dataset=reader)),
    new=dict(dataset=dict(dataset=reader)))
test_dataloader = val_dataloader
model = dict(text_prompt=dict(type='CoOp', n_ctx=4, ctx_init='a photo of a'))
train_cfg = dict(max_epochs=50)
