# Mutual prompt learning (IJCV 2024), reconstruction: FTP (fine-grained text
# prompt) + TVP (text-reorganized visual prompt) on CLIP ViT-B/16,
# every protocol. Leaves add the dataset base (which sets the protocol) and
# the batch size; the ablations drop one module (see configs/mpl/README.md).
# Defaults of DESIGN.md: FTP = 4 context vectors from "a photo of a", one
# bottleneck head D->D/16->Dt per context token on the frozen global feature;
# TVP = top-k (k = min(5, C)) classes by affinity softmax(cos(f0, g)/0.01)
# with the text branch's features g, 4 learnable queries attending over the
# kept texts (8 heads), Linear(D, Dv) -> 4 visual prompt tokens at the input.
# Schedule: CoCoOp-like, lr 2e-3, 10 epochs (PROTOCOL.md).
_base_ = [
    '../../_base_/models/clip_vitb16.py',
    '../../_base_/schedules/sgd_warmup_cosine.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    text_prompt=dict(type='FTP', n_ctx=4, ctx_init='a photo of a',
                     decomposition='heads', diversity_weight=0.0),
    visual_prompt=dict(type='TVP', n_prompts=4, top_k=None, tau=0.01,
                       text_source='text', depth=1),
    # B*C prompts per batch go through the text encoder in chunks of 2048
    # sequences (bounds evaluation memory: 100 test images x C classes).
    text_chunk_size=2048)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(max_epochs=10)
