# Mutual prompt learning (IJCV 2024), reconstruction (second reading,
# docs/methods_tomm_mpl.md): FTP (fine-grained text prompt) + TVP
# (text-reorganized visual prompt) on CLIP ViT-B/16, every protocol. Leaves
# add the dataset base (which sets the protocol) and the batch size; the
# ablations drop one module (see configs/mpl/README.md).
# Defaults of DESIGN.md: FTP = 4 context vectors from "a photo of a", the
# frozen global feature split exactly into 4 orthogonal components (a
# learnable orthogonal basis in 4 blocks), one bottleneck map D->D/16->Dt per
# component and context token; TVP = affinity softmax(s cos(f0, g)) at the
# CLIP's logit scale with the text branch's features g, the class-set mean
# removed, the smallest top set of classes reaching 0.9 of the affinity kept
# (at most 8), 4 learnable queries attending over the kept texts (8 heads),
# Linear(D, Dv) -> 4 visual prompt tokens at the input.
# First readings as ablations: FTP decomposition='heads', TVP keep='topk'.
# Schedule: CoCoOp's, lr 2e-3, 10 epochs, batch 1 (PROTOCOL.md; the leaves
# set the batch). At batch 4 with the same lr FTP took a quarter of CoCoOp's
# steps and fit the base classes less (docs/methods_tomm_mpl.md,
# "Diagnosis"); mmpl's batched text encoder trains larger batches too:
# --cfg-options train_dataloader.batch_size=4 optim_wrapper.optimizer.lr=8e-3
# (linear scaling).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    text_prompt=dict(type='FTP', n_ctx=4, ctx_init='a photo of a',
                     decomposition='orthogonal', diversity_weight=0.0),
    visual_prompt=dict(type='TVP', n_prompts=4, keep='mass', rho=0.9,
                       k_max=8, tau=None, text_source='text', depth=1),
    # B*C prompts per batch go through the text encoder in chunks of 2048
    # sequences (bounds evaluation memory: 100 test images x C classes).
    text_chunk_size=2048)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(max_epochs=10)
# tools/train.py --auto-scale-lr: lr 2e-3 is CoCoOp's lr at its batch 1
auto_scale_lr = dict(base_batch_size=1)
