# The offline demo (`make demo`, tools/demo.py): CoOp base-to-new on a
# generated miniature in the EuroSAT layout, with mmpl's tiny CLIP (random
# weights), on CPU. Same code path as a GPU run; only the model, the data and
# the schedule are small. tools/demo.py writes the data and sets data_root.
_base_ = ['../coop/coop_vitb16_b2n_eurosat.py']

model = dict(
    clip=dict(arch='mmpl-tiny-vit', pretrained=None),
    text_prompt=dict(n_ctx=4, ctx_init='a photo of a'))
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=8, **loader)
val_dataloader = dict(base=dict(batch_size=50, **loader),
                      new=dict(batch_size=50, **loader))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.05))
train_cfg = dict(max_epochs=10)
default_hooks = dict(logger=dict(interval=10))
