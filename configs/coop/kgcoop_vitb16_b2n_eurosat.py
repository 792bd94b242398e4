# KgCoOp-style (Yao et al., CVPR 2023) on EuroSAT base-to-new, ViT-B/16:
# CoOp with 4 context vectors from "a photo of a" plus the text retention
# loss 8 * (1 - cos(g_c, t0_c)) to the frozen hand-crafted class features.
# KgCoOp's schedule (PROTOCOL.md): lr 2e-3, 100 epochs, batch 128.
_base_ = ['./coop_vitb16_b2n_eurosat.py']
model = dict(
    text_prompt=dict(n_ctx=4, ctx_init='a photo of a'),
    extra_losses=[
        dict(type='TextRetentionLoss', loss_weight=8.0, distance='cosine')
    ])
train_dataloader = dict(batch_size=128)
# tools/train.py --auto-scale-lr: lr 2e-3 is KgCoOp's lr at its batch 128
# (set here, with the batch: KgCoOp has no method base of its own)
auto_scale_lr = dict(base_batch_size=128)
train_cfg = dict(max_epochs=100)
method_name = 'KgCoOp'  # the report's label (the modules alone say CoOp)
