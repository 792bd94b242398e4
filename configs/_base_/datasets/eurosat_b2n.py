# EuroSAT base-to-new (PROTOCOL.md): 16 shots of the base classes for
# training; the base test set with base names and the new test set with new
# names for evaluation (base/accuracy/top1, new/accuracy/top1,
# harmonic_mean). The data root is the dataset folder in the CoOp layout:
#   data/eurosat/2750/<Class>/*.jpg, data/eurosat/split_zhou_EuroSAT.json
_base_ = ['./pipelines.py']

dataset_type = 'CoOpEuroSAT'
data_root = 'data/eurosat'
num_shots = 16

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='BaseNewDataset',
        subset='base',
        dataset=dict(
            type='FewShotDataset',
            num_shots=num_shots,
            seed=1,
            dataset=dict(type=dataset_type, data_root=data_root,
                         split='train', pipeline={{_base_.train_pipeline}}))))


def _test_split(subset):
    return dict(
        batch_size=100,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='BaseNewDataset',
            subset=subset,
            dataset=dict(type=dataset_type, data_root=data_root,
                         split='test', pipeline={{_base_.test_pipeline}})))


val_dataloader = dict(base=_test_split('base'), new=_test_split('new'))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
