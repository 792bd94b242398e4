# The offline demo (`make demo`): CoOp base-to-new on a generated miniature
# in the EuroSAT layout, with mmpl's tiny CLIP (random weights), on CPU.
# Same code path as a GPU run; only the model, data and schedule are small.
# tools/demo.py writes the data to work_dirs/demo/data/eurosat first.
_base_ = ['../coop/coop_vitb16_b2n_eurosat.py']

data_root = 'work_dirs/demo/data/eurosat'
model = dict(
    clip=dict(arch='mmpl-tiny-vit', pretrained=None),
    text_prompt=dict(n_ctx=4, ctx_init='a photo of a'))
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=8, **loader,
    dataset=dict(dataset=dict(dataset=dict(data_root=data_root))))
val_dataloader = dict(
    base=dict(batch_size=50, **loader,
              dataset=dict(dataset=dict(data_root=data_root))),
    new=dict(batch_size=50, **loader,
             dataset=dict(dataset=dict(data_root=data_root))))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.05))
train_cfg = dict(max_epochs=10)
default_hooks = dict(logger=dict(interval=10))
