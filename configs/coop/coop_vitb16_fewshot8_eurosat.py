# CoOp few-shot on EuroSAT, 8 shots per class: CoOp's 200 epochs for 8 shots
# (PROTOCOL.md).
_base_ = ['./coop_vitb16_fewshot16_eurosat.py']
train_dataloader = dict(dataset=dict(num_shots=8))
train_cfg = dict(max_epochs=200)
