# CoCoOp (Zhou et al., CVPR 2022), ViT-B/16, every protocol: 4 context
# vectors initialised from "a photo of a", meta-net D->D/16->Dt; SGD lr
# 2e-3, 10 epochs, batch 1 as published (PROTOCOL.md). Leaves add a dataset
# base (which sets the protocol) and the batch size (the dataset base owns
# train_dataloader); mmpl's batched text encoder also trains larger batches:
# --cfg-options train_dataloader.batch_size=8.
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(text_prompt=dict(type='CoCoOp', n_ctx=4,
                              ctx_init='a photo of a'))
train_cfg = dict(max_epochs=10)
# tools/train.py --auto-scale-lr: lr 2e-3 is CoCoOp's lr at its batch 1
auto_scale_lr = dict(base_batch_size=1)
