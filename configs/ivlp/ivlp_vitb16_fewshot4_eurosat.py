# IVLP few-shot on EuroSAT, 4 shots per class (the same schedule for every
# shot count).
_base_ = ['./ivlp_vitb16_fewshot16_eurosat.py']
train_dataloader = dict(dataset=dict(num_shots=4))
