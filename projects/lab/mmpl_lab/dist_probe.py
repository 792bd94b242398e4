"""A hook that records what a distributed run set up, for the GPU check's
``tools/dist_train.sh CONFIG 1`` step (:mod:`mmpl_lab.gpu_check`), which
imports this module through the config's ``custom_imports``.

``DistSetupProbe`` writes ``<work_dir>/dist_probe_rank<r>.json`` before
training: whether a process group is up, its backend (NCCL on GPUs, gloo
on CPU), world size and rank, the device of the model's parameters and the
model wrapper the runner chose."""
import json
import os.path as osp

import torch.distributed as torch_dist
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class DistSetupProbe(Hook):

    def before_train(self, runner) -> None:
        up = torch_dist.is_available() and torch_dist.is_initialized()
        rank = torch_dist.get_rank() if up else 0
        params = list(runner.model.parameters())
        record = dict(
            initialized=up,
            backend=str(torch_dist.get_backend()) if up else None,
            world_size=torch_dist.get_world_size() if up else 1,
            rank=rank,
            device=str(params[0].device) if params else None,
            wrapper=type(runner.model).__name__)
        with open(osp.join(runner.work_dir,
                           f'dist_probe_rank{rank}.json'), 'w') as f:
            json.dump(record, f)
