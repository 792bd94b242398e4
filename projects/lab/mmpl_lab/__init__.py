"""mmpl's laboratory: what measures mmpl, apart from the plugin itself.

One meaning per module, imported on use (none registers anything unless
named below):

* :mod:`.clips`: the tiny CLIPs (model configs, pretrained weights);
* :mod:`.shapes`: the embedded toy benchmark, generated coloured shapes
  and the config rewrite that runs any method on them (``make demo``);
* :mod:`.world`, :mod:`.tasks`, :mod:`.pretrain`, :mod:`.headroom`,
  :mod:`.paired`, :mod:`.yardstick`: the yardstick (docs/yardstick.md);
* :mod:`.speed`, :mod:`.efficiency`: speed, memory, FLOPs and text-encoder
  work against the per-image formulation of the original code;
* :mod:`.gpu_check`, :mod:`.dist_probe`: the GPU check (the CUDA tests,
  ``dist_train.sh CONFIG 1``, the benchmark on every family; the probe hook
  registers itself when a config imports it).

Its command lines are in ``projects/lab/tools``, its tests in
``projects/lab/tests``.
"""
import os.path as osp

__version__ = '0.1.0'
#: the repository the lab lives in (its ``configs/``): the lab is installed
#: from a clone, editable, never from a wheel
REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
