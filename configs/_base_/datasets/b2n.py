# Base-to-new protocol (PROTOCOL.md), for any reader: 16 shots of the base
# classes for training (few-shot sampling first, then the base/new split, as
# CoOp does); the base test set with base names and the new test set with
# new names for evaluation (base/accuracy/top1, new/accuracy/top1,
# harmonic_mean). A dataset file sets the reader in the three places marked
# `reader` (see eurosat_b2n.py).
_base_ = ['./pipelines.py']

protocol = 'b2n'  # recorded in results.json (the report's table)
reader = dict(type=None, data_root=None)

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type='BaseNewDataset',
        subset='base',
        dataset=dict(
            type='FewShotDataset',
            num_shots=16,
            seed=1,
            dataset=dict(reader, split='train',
                         pipeline={{_base_.train_pipeline}}))))


def _test_split(subset):
    return dict(
        batch_size=100,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='BaseNewDataset',
            subset=subset,
            dataset=dict(reader, split='test',
                         pipeline={{_base_.test_pipeline}})))


val_dataloader = dict(base=_test_split('base'), new=_test_split('new'))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
