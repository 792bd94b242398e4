"""mmpl-lab: the project's measurement laboratory, apart from the product.

Installed (editable) by the repository's ``make env``; not on PyPI. It holds
what measures mmpl rather than what mmpl is: the embedded toy benchmark
behind ``make demo``, the yardstick's caption world, its tasks and its
statistics, the tiny CLIPs' pretraining recipe and weights, and the speed,
efficiency and profiling benchmark.
"""
from setuptools import find_packages, setup

setup(
    name='mmpl-lab',
    version='0.1.0',
    description="mmpl's laboratory: the embedded benchmark, the yardstick "
    'and the speed benchmark (not part of the mmpl wheel)',
    packages=find_packages(include=['mmpl_lab', 'mmpl_lab.*']),
    package_data={'mmpl_lab': ['clip/model_configs/*.json',
                               'clip/weights/*.pt', 'clip/weights/*.md']},
    python_requires='>=3.9',
    install_requires=['mmpl'],
)
