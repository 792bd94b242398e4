# Ablation: TVP alone on DTD base-to-new, ViT-B/16. The text side is a
# CoOp-style context (4 vectors from "a photo of a", shared by all images, no
# image conditioning); TVP builds the visual prompts from its text features.
# See configs/mpl/README.md.
_base_ = [
    './_base_/ftp_tvp_vitb16.py', '../_base_/datasets/dtd_b2n.py'
]
model = dict(text_prompt=dict(_delete_=True, type='CoOp', n_ctx=4,
                              ctx_init='a photo of a'))
train_dataloader = dict(batch_size=1)
