# Task-oriented mutual learning (Long et al., ICCV 2023), reconstruction
# (second reading, docs/methods_tomm_mpl.md): CTP (class-aware text prompt)
# + TFT (text-guided feature tuning) on CLIP ViT-B/16, every protocol. Leaves
# add the dataset base (which sets the protocol) and the batch size.
# Defaults of DESIGN.md: 4 context vectors from "a photo of a"; CTP pools the
# frozen value-path patch features by their cosine to each class anchor (scale
# learnable from the logit scale) and CoCoOp's meta-net D->D/16->Dt maps the
# result to that class's context shift; TFT mixes the global feature with a
# text-guided re-pooling of the value-path patches, (1 - gamma) f + gamma h,
# gamma = sigmoid(w) initialised at 0.1, no free projections.
# The alignment loss (the paper's contrastive loss between the augmented text
# and image features): the default is the image-to-text reading, which is
# loss_cls itself (the softmax of each image over the class prompts built for
# it). The symmetric reading adds the text-to-image term within the batch;
# it needs batch > 1 and cost base accuracy on the yardstick (set C: -4.5
# base, -1.5 HM; docs/methods_tomm_mpl.md, "Diagnosis"). To add it, in a
# config on top of a leaf:
#   model = dict(extra_losses=[dict(type='AlignmentLoss',
#                                   image_to_text_weight=0.0)])
#   train_dataloader = dict(batch_size=4)
#   optim_wrapper = dict(optimizer=dict(lr=8e-3))  # 2e-3 x 4
# First readings as ablations: CTP pooling='attention', TFT value_proj=True,
# dense='tokens' for either.
# Schedule: CoCoOp's, lr 2e-3, 10 epochs, batch 1 (PROTOCOL.md; the leaves
# set the batch). At batch 4 with the same lr CTP took a quarter of CoCoOp's
# steps and fit the base classes less (docs/methods_tomm_mpl.md,
# "Diagnosis"); larger batches: scale the lr linearly (batch 4: 8e-3).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    text_prompt=dict(type='CTP', n_ctx=4, ctx_init='a photo of a',
                     pooling='similarity', dense='values'),
    feature_tuner=dict(type='TFT', gamma_init=0.1, dense='values'),
    # B*C prompts per batch go through the text encoder in chunks of 2048
    # sequences (bounds evaluation memory: 100 test images x C classes).
    text_chunk_size=2048)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(max_epochs=10)
# tools/train.py --auto-scale-lr: lr 2e-3 is CoCoOp's lr at its batch 1
auto_scale_lr = dict(base_batch_size=1)
