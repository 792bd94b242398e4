# CoOp few-shot on EuroSAT, 1 shot per class: CoOp's 50 epochs for 1 shot
# (PROTOCOL.md).
_base_ = ['./coop_vitb16_fewshot16_eurosat.py']
train_dataloader = dict(dataset=dict(num_shots=1))
train_cfg = dict(max_epochs=50)
