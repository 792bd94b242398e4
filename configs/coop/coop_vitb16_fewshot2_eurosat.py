# CoOp few-shot on EuroSAT, 2 shots per class: CoOp's 100 epochs for 2 shots
# (PROTOCOL.md).
_base_ = ['./coop_vitb16_fewshot16_eurosat.py']
train_dataloader = dict(dataset=dict(num_shots=2))
train_cfg = dict(max_epochs=100)
