# PromptSRC few-shot: 50 epochs for every shot count (the official few-shot
# schedule); the aggregation's mean follows the schedule (0.75 x epochs, as
# 15 of 20 in base-to-new: the project's reading), std 1 epoch.
_base_ = ['./promptsrc_vitb16.py']
fewshot_epochs = {1: 50, 2: 50, 4: 50, 8: 50, 16: 50}
train_cfg = dict(max_epochs=50)
custom_hooks = [
    dict(type='ClassNamesHook'),
    dict(type='NaNGuardHook'),
    dict(type='PlainCheckpointHook'),
    dict(type='RunResultsHook'),
    dict(type='GaussianPromptAggregationHook', mean=None, std=1),
]
