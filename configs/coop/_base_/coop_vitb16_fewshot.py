# CoOp's schedule by shots (PROTOCOL.md: 50 / 100 / 200 epochs): 1 shot 50
# epochs, 2 and 4 shots 100, 8 and 16 shots 200; the 16-shot ImageNet model
# of cross-dataset transfer and domain generalisation follows it too.
# tools/run_benchmark.py --shots K reads `fewshot_epochs`; by hand:
#   --cfg-options train_dataloader.dataset.num_shots=K train_cfg.max_epochs=E
_base_ = ['./coop_vitb16.py']
fewshot_epochs = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}
train_cfg = dict(max_epochs=200)
