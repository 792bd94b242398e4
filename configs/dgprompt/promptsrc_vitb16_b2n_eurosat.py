# PromptSRC-style (Khattak et al., ICCV 2023) on EuroSAT base-to-new,
# ViT-B/16: DGPrompt with the guidance off = deep *independent* prompts in
# both towers (4 text tokens from "a photo of a" + 4 visual tokens, depth 9,
# no residual) plus the three retention terms (text L1 x25, image L1 x10,
# KL x1). Kept here as DGPrompt's no-guidance ablation. Not reproduced:
# PromptSRC's Gaussian prompt aggregation over epochs and its ensemble of
# anchor templates (mmpl's anchors use the dataset's one template).
# PromptSRC's schedule (PROTOCOL.md): lr 2.5e-3, 20 epochs, batch 4.
_base_ = ['./dgprompt_vitb16_b2n_eurosat.py']
model = dict(
    text_prompt=dict(n_ctx=4, n_visual=4, guidance='none', alpha=0.0))
optim_wrapper = dict(optimizer=dict(lr=2.5e-3))
train_cfg = dict(max_epochs=20)
method_name = 'PromptSRC'  # the report's label (the module is DGPrompt)
