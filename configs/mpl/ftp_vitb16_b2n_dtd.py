# Ablation: FTP alone (no visual prompt) on DTD base-to-new, ViT-B/16;
# the frozen image pass is reused as the image feature.
# See configs/mpl/README.md. Batch 1 x 24 base classes = 24 sequences per step.
_base_ = [
    './_base_/ftp_tvp_vitb16.py', '../_base_/datasets/dtd_b2n.py'
]
model = dict(visual_prompt=None)
train_dataloader = dict(batch_size=1)
