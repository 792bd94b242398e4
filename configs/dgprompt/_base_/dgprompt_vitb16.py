# DGPrompt (Neural Networks 2025; mmpl's reconstruction, see DESIGN.md),
# ViT-B/16, every protocol: 2 prompt tokens per layer in both towers up to
# depth 9, dual (text <-> visual) linear guidance from the previous layer,
# residual alpha 0.1, plus the retention module (text L1 x25, image L1 x10,
# KL x1).
# MaPLe's schedule: SGD lr 3.5e-3, 5 epochs, batch 4, for every protocol
# (PROTOCOL.md). Leaves add a dataset base (which sets the protocol) and the
# batch size (the dataset base owns train_dataloader).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    text_prompt=dict(type='DGPrompt', n_ctx=2, depth=9,
                     ctx_init='a photo of a', guidance='linear', alpha=0.1),
    extra_losses=[
        dict(type='TextRetentionLoss', loss_weight=25.0, distance='l1'),
        dict(type='ImageRetentionLoss', loss_weight=10.0),
        dict(type='LogitRetentionLoss', loss_weight=1.0),
    ])
optim_wrapper = dict(optimizer=dict(lr=3.5e-3))
train_cfg = dict(max_epochs=5)
