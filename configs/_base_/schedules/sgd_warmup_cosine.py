# The CoOp-benchmark schedule (PROTOCOL.md): SGD momentum 0.9, weight decay
# 5e-4, one warm-up epoch at a constant 1e-5, then cosine per epoch.
# ConstantWarmupCosineLR follows optim_wrapper.optimizer.lr and
# train_cfg.max_epochs, so leaves only override those two.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=2e-3, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='ConstantWarmupCosineLR', warmup_lr=1e-5, warmup_epochs=1,
         by_epoch=True)
]
# Evaluate once, after the last epoch (mmengine always validates the last
# epoch): the benchmark reports the last epoch's model.
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10000)
val_cfg = dict(type='MultiSplitValLoop')
test_cfg = dict(type='MultiSplitTestLoop')
