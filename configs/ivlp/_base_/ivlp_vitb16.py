# IVLP, independent deep vision-language prompts (the baseline of MaPLe,
# CVPR 2023, and PromptSRC, ICCV 2023; official code: the PromptSRC
# repository, trainers/independentVL.py), ViT-B/16, every protocol: 4 text
# tokens from "a photo of a" + 4 visual tokens in the first 9 layers of both
# towers, no coupling; the official yaml vit_b16_c2_ep20_batch4_4+4ctx:
# SGD lr 2.5e-3, 20 epochs, batch 4 (PROTOCOL.md). Leaves add a dataset base
# (which sets the protocol) and the batch size (the dataset base owns
# train_dataloader).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    text_prompt=dict(type='IVLP', n_ctx=4, n_visual=4, depth=9,
                     ctx_init='a photo of a'))
optim_wrapper = dict(optimizer=dict(lr=2.5e-3))
train_cfg = dict(max_epochs=20)
# tools/train.py --auto-scale-lr: lr 2.5e-3 is the official lr at batch 4
auto_scale_lr = dict(base_batch_size=4)
