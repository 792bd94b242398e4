"""mmpl: CLIP prompt learning as an OpenMMLab (mmpretrain) plugin."""
from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open('mmpl/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmpl',
    version=read_version(),
    description='CLIP prompt learning (CoOp, CoCoOp, MaPLe, CTP/TFT, FTP/TVP, '
    'DGPrompt) for OpenMMLab',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmpl', 'mmpl.*']),
    package_data={
        'mmpl': [
            'clip/model_configs/*.json', 'clip/weights/*.pt',
            'datasets/meta/*.txt'
        ]
    },
    python_requires='>=3.9',
    # Compatible ranges: a user's own CUDA torch keeps working. The tested pins
    # are in requirements.txt (installed by `make env`).
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'mmengine>=0.10.4,<0.11',
        'mmpretrain>=1.2.0,<2',
        'open_clip_torch>=2.32,<4',
        'numpy',
        'pillow',
    ],
    extras_require={
        'lite': ['mmcv-lite>=2.0.0rc4,<2.3'],
        'tests': ['pytest'],
        'report': ['matplotlib'],
    },
    license='Apache-2.0',
)
