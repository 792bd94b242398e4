# CoOp (Zhou et al., IJCV 2022), ViT-B/16: one unified context of 16 vectors
# (random init), class token at the end; SGD lr 2e-3, batch 32 (the dataset
# base's), 50 epochs for base-to-new. Few-shot, cross-dataset transfer and
# domain generalisation train by shots: coop_vitb16_fewshot.py. Leaves add a
# dataset base (which sets the protocol).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(text_prompt=dict(type='CoOp', n_ctx=16, ctx_init=None))
train_cfg = dict(max_epochs=50)
# tools/train.py --auto-scale-lr: lr 2e-3 is CoOp's lr at its batch 32
auto_scale_lr = dict(base_batch_size=32)
