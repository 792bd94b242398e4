# CLIP input pipeline of the CoOp benchmark: 224 px, bicubic; train
# RandomResizedCrop(0.08-1) + flip; test resize short side + center crop.
# Normalisation (CLIP mean/std, BGR->RGB) is the model's data_preprocessor.
# CheckedLoadImageFromFile = LoadImageFromFile that names an undecodable file.
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', interpolation='bicubic',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
