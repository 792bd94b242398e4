# PromptSRC (Khattak et al., ICCV 2023, "Self-regulating Prompts: Foundational
# Model Adaptation without Forgetting"), ViT-B/16, every protocol: IVLP
# (configs/ivlp/) plus the official self-regularisation, as the official code
# (trainers/promptsrc.py, commit bb95c77) computes it:
# - anchors: the frozen CLIP's features of the 60 official templates
#   (IMAGENET_TEMPLATES, for every dataset), averaged unnormalised and then
#   normalised (promptsrc.py:128; not CLIP's zero-shot rule);
# - L1 of the normalised text features to the anchors x25, L1 of the
#   normalised image features to the prompt-free ones x10, KL(p_zs || p)
#   summed and divided by B*C x1;
# - Gaussian prompt aggregation over the epochs, N(15, 1) of 20, applied to
#   the prompts before the last evaluation and checkpoint.
# The official yaml vit_b16_c2_ep20_batch4_4+4ctx: SGD lr 2.5e-3, 20 epochs,
# batch 4 (PROTOCOL.md).
_base_ = ['../../ivlp/_base_/ivlp_vitb16.py']
model = dict(
    anchor_templates='promptsrc_imagenet',
    anchor_average='unnormalised',
    extra_losses=[
        dict(type='TextRetentionLoss', loss_weight=25.0, distance='l1'),
        dict(type='ImageRetentionLoss', loss_weight=10.0),
        dict(type='LogitRetentionLoss', loss_weight=1.0),
    ])
custom_hooks = [
    dict(type='ClassNamesHook'),
    dict(type='NaNGuardHook'),
    dict(type='PlainCheckpointHook'),
    dict(type='RunResultsHook'),
    dict(type='GaussianPromptAggregationHook', mean=15, std=1),
]
# tools/train.py --auto-scale-lr: lr 2.5e-3 is the official lr at batch 4
auto_scale_lr = dict(base_batch_size=4)
