# Task-oriented mutual learning (Long et al., ICCV 2023), reconstruction:
# CTP (class-aware text prompt) + TFT (text-guided feature tuning) on
# CLIP ViT-B/16, every protocol. Leaves add the dataset base (which sets the
# protocol) and the batch size.
# Defaults of DESIGN.md: 4 context vectors from "a photo of a", CoCoOp's
# meta-net D->D/16->Dt, 8-head cross-attention over the frozen image tokens,
# TFT gamma initialised at 0.1. The alignment loss's image-to-text term is the
# classification CE (loss_cls); its text-to-image term is off by default, to
# turn it on:
#   --cfg-options "model.extra_losses=[dict(type='AlignmentLoss',
#       image_to_text_weight=0.0, text_to_image_weight=1.0)]"
# Schedule: CoCoOp-like, lr 2e-3, 10 epochs (PROTOCOL.md).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    text_prompt=dict(type='CTP', n_ctx=4, ctx_init='a photo of a',
                     num_heads=8, class_chunk_size=128),
    feature_tuner=dict(type='TFT', num_heads=8, gamma_init=0.1),
    # B*C prompts per batch go through the text encoder in chunks of 2048
    # sequences (bounds evaluation memory: 100 test images x C classes).
    text_chunk_size=2048)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(max_epochs=10)
