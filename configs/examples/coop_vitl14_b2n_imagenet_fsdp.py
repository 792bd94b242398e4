# CoOp on ImageNet base-to-new with ViT-L/14, trained by mmengine's
# FlexibleRunner with FSDP (GPUs only; FSDP needs a process group, also on
# one GPU):
#   bash tools/dist_train.sh \
#       configs/examples/coop_vitl14_b2n_imagenet_fsdp.py 8
#
# What FSDP does here: it shards the trainable prompt parameters and their
# optimizer state. The frozen CLIP lives outside the module tree (never
# trained, never checkpointed), so it is not sharded: each GPU holds a copy
# (ViT-L/14 is about 0.9 GB in fp16, 1.7 GB in fp32), which
# PromptCLIPFullyShardedDataParallel moves to the process's GPU. Activations
# are expected to take most memory (CoOp back-propagates through the text
# encoder for all 500 base classes; not measured): grad_checkpointing
# recomputes the text blocks in the backward pass instead of keeping them.
# Without runner_type/strategy the same config trains with the default
# Runner and DDP.
#
# Not run by the project yet (no GPU): tests/test_distributed.py checks that
# this config loads, builds mmengine's FlexibleRunner and FSDPStrategy, and
# stops with one line on a machine without a GPU.
#
# DeepSpeed instead of FSDP (pip install deepspeed; equally unverified):
#   strategy = dict(type='DeepSpeedStrategy', zero_optimization=dict(stage=2),
#                   bf16=dict(enabled=True))
#   optim_wrapper = dict(type='DeepSpeedOptimWrapper',
#                        optimizer=dict(type='SGD', lr=2e-3, momentum=0.9,
#                                       weight_decay=5e-4))
_base_ = ['../coop/coop_vitb16_b2n_imagenet.py']

model = dict(
    clip=dict(arch='ViT-L-14', pretrained='openai', grad_checkpointing=True))

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(type='PromptCLIPFullyShardedDataParallel'),
    # one full state dict on rank 0: the same small plain checkpoint as
    # with the default Runner (weights_only loading, --resume)
    state_dict_cfg='full')
