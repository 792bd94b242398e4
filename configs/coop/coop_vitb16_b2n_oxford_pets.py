# CoOp (Zhou et al., IJCV 2022) on OxfordPets base-to-new, ViT-B/16.
# Unified context, 16 vectors, class token at the end; lr 2e-3, batch 32.
_base_ = [
    '../_base_/models/clip_vitb16.py', '../_base_/datasets/oxford_pets_b2n.py',
    '../_base_/schedules/sgd_warmup_cosine.py',
    '../_base_/default_runtime.py'
]
model = dict(text_prompt=dict(type='CoOp', n_ctx=16, ctx_init=None))
train_cfg = dict(max_epochs=50)
