# DGPrompt (Neural Networks 2025; mmpl's reconstruction, see DESIGN.md and
# configs/dgprompt/README.md), ViT-B/16, every protocol: the two towers run
# block by block, interleaved; 2 prompt tokens per layer in both up to depth
# 9; layer l's text prompts are generated (linear guidance) from the image
# tower's layer-l CLS + prompt states, its visual prompts from the text
# tower's layer-l EOT states pooled over the class set (mean), + alpha 0.1 x
# layer l-1's generated prompts; plus the retention module (text L1 x25,
# image L1 x10, KL(p_zs || p) x1).
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
                     ctx_init='a photo of a', guidance='linear', alpha=0.1,
                     pooling='mean'),
    extra_losses=[
        dict(type='TextRetentionLoss', loss_weight=25.0, distance='l1'),
        dict(type='ImageRetentionLoss', loss_weight=10.0),
        dict(type='LogitRetentionLoss', loss_weight=1.0),
    ])
optim_wrapper = dict(optimizer=dict(lr=3.5e-3))
train_cfg = dict(max_epochs=5)
# tools/train.py --auto-scale-lr: lr 3.5e-3 is MaPLe's lr at its batch 4
auto_scale_lr = dict(base_batch_size=4)
