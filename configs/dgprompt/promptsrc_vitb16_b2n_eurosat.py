# PromptSRC-style (Khattak et al., ICCV 2023) on EuroSAT base-to-new,
# ViT-B/16: DGPrompt with the guidance off = deep *independent* prompts in
# both towers (4 text tokens from "a photo of a" + 4 visual tokens, depth 9,
# no residual) plus the three retention terms (text L1 x25, image L1 x10,
# KL x1). Kept here as DGPrompt's no-guidance ablation (it differs from
# dgprompt_vitb16_b2n_eurosat.py only by the guidance, the token counts and
# the schedule), so
# PromptSRC's Gaussian prompt aggregation and its template-ensemble anchors
# stay off here; a leaf config on top of this one adds them:
#   model = dict(anchor_templates='openai_imagenet')
#   custom_hooks = [dict(type='ClassNamesHook'), dict(type='NaNGuardHook'),
#                   dict(type='PlainCheckpointHook'),
#                   dict(type='RunResultsHook'),
#                   dict(type='GaussianPromptAggregationHook', mean=15, std=1)]
# PromptSRC's schedule (PROTOCOL.md): lr 2.5e-3, 20 epochs, batch 4.
_base_ = ['./dgprompt_vitb16_b2n_eurosat.py']
model = dict(
    text_prompt=dict(n_ctx=4, n_visual=4, guidance='none', alpha=0.0))
optim_wrapper = dict(optimizer=dict(lr=2.5e-3))
train_cfg = dict(max_epochs=20)
method_name = 'PromptSRC'  # the report's label (the module is DGPrompt)
