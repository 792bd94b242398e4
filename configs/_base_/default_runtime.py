# Runtime shared by every mmpl config.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmpl'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Results are the last epoch's model (PROTOCOL.md); checkpoints hold only
    # the prompt parameters (+ optimizer/scheduler state for --resume).
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)
# ClassNamesHook: the model reads the class names (and template) of the data
# it trains on. PlainCheckpointHook: checkpoints are plain data that load with
# torch.load(weights_only=True), plus the meta needed to rebuild the model.
# RunResultsHook: <work_dir>/results.json (metrics + method/dataset/seed).
# NaNGuardHook: stop at a non-finite loss before a checkpoint is written.
custom_hooks = [
    dict(type='ClassNamesHook'),
    dict(type='NaNGuardHook'),
    dict(type='PlainCheckpointHook'),
    dict(type='RunResultsHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
# tools/train.py --seed N sets this and every few-shot sampling seed.
randomness = dict(seed=1, deterministic=False)
