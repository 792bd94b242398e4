# MaPLe (Khattak et al., CVPR 2023), ViT-B/16, every protocol (PROTOCOL.md):
# 2 context tokens ('a photo'), prompt depth 9, per-layer Linear(Dt, Dv)
# coupling of the text prompts into visual prompts; SGD lr 3.5e-3, 5 epochs,
# batch 4. Leaves add a dataset base (which sets the protocol) and the batch
# size (the dataset base owns train_dataloader).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(text_prompt=dict(type='MaPLe', n_ctx=2, depth=9,
                              ctx_init='a photo of a'))
optim_wrapper = dict(optimizer=dict(lr=3.5e-3))
train_cfg = dict(max_epochs=5)
# tools/train.py --auto-scale-lr: lr 3.5e-3 is MaPLe's lr at its batch 4
auto_scale_lr = dict(base_batch_size=4)
