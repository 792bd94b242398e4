# IVLP few-shot: the official few-shot schedule of the PromptSRC repository
# (50 epochs for every shot count); tools/run_benchmark.py --shots K reads
# `fewshot_epochs`.
_base_ = ['./ivlp_vitb16.py']
fewshot_epochs = {1: 50, 2: 50, 4: 50, 8: 50, 16: 50}
train_cfg = dict(max_epochs=50)
