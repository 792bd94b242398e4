# Mix mmpl into a plain mmpretrain config: mmpretrain's own runtime and its
# CustomDataset (your images, one folder per class), wrapped by mmpl's
# FewShotDataset / BaseNewDataset, trained with an mmpl prompt method.
# Layout (mmpretrain CustomDataset, one sub-folder per split):
#   data/custom/train/<class>/*.jpg, data/custom/test/<class>/*.jpg
# Base-to-new: 16 shots of the first half of the (sorted) classes for
# training; evaluation on the base and the new classes of the test folder
# (base/accuracy/top1, new/accuracy/top1, harmonic_mean).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmpl'], allow_failed_imports=False)

model = dict(
    type='PromptCLIPClassifier',
    clip=dict(arch='ViT-B-16', pretrained='openai'),
    text_prompt=dict(type='CoOp', n_ctx=4, ctx_init='a photo of a'))

data_root = 'data/custom'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', interpolation='bicubic',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type='BaseNewDataset',
        subset='base',
        dataset=dict(
            type='FewShotDataset',
            num_shots=16,
            seed=1,
            dataset=dict(type='CustomDataset', data_root=data_root,
                         data_prefix='train', pipeline=train_pipeline))))
test_split = dict(
    batch_size=100,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BaseNewDataset', subset='base',
                 dataset=dict(type='CustomDataset', data_root=data_root,
                              data_prefix='test', pipeline=test_pipeline)))
val_dataloader = dict(
    base=test_split,
    new=dict(test_split, dataset=dict(test_split['dataset'], subset='new')))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=2e-3, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='ConstantWarmupCosineLR', warmup_lr=1e-5, warmup_epochs=1,
         by_epoch=True)
]
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=10000)
val_cfg = dict(type='MultiSplitValLoop')
test_cfg = dict(type='MultiSplitTestLoop')
custom_hooks = [
    dict(type='ClassNamesHook'),
    dict(type='NaNGuardHook'),
    dict(type='PlainCheckpointHook'),
]
randomness = dict(seed=1, deterministic=False)
