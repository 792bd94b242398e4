# Few-shot protocol (PROTOCOL.md), for any reader: K=16 shots of every class
# for training (FewShotDataset, seeded by the run seed), the full test set
# for evaluation. A dataset file sets `reader`, passes it to the training
# set, and names the evaluation split after the dataset slug so that the
# metric is `<slug>/accuracy/top1` (see eurosat_fewshot.py):
#   val_dataloader = dict(<slug>=dict(_base_.test_loader,
#       dataset=dict(_base_.test_loader.dataset, **reader)))
# Other shot counts: --cfg-options train_dataloader.dataset.num_shots=K
# (and the method's epochs for K, docs/protocols.md).
_base_ = ['./pipelines.py']

protocol = 'fewshot'  # recorded in results.json (the report's table)
reader = dict(type=None, data_root=None)

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type='FewShotDataset',
        num_shots=16,
        seed=1,
        dataset=dict(reader, split='train',
                     pipeline={{_base_.train_pipeline}})))

# the evaluation dataloader template (the dataset file names the split)
test_loader = dict(
    batch_size=100,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(reader, split='test', pipeline={{_base_.test_pipeline}}))

val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
