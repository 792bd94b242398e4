"""Model wrappers (mmengine's ``MODEL_WRAPPERS``) for the runs mmengine's
own wrappers do not cover: DDP across CPU processes, FSDP with the frozen
CLIP outside the module tree. :func:`mmpl.apis.prepare_launch` selects
the CPU one."""
import torch
from mmengine.model import (MMDistributedDataParallel,
                            MMFullyShardedDataParallel)
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU processes (gloo): DDP accepts
    no ``device_ids`` for a CPU module, and the runner always passes
    ``device_ids=[LOCAL_RANK]``. Selected by
    :func:`mmpl.apis.prepare_launch` when no GPU is visible. Registered in
    mmengine's root ``MODEL_WRAPPERS``: the runner looks wrapper types up
    there without switching scope."""

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)


@MODEL_WRAPPERS.register_module()
class PromptCLIPFullyShardedDataParallel(MMFullyShardedDataParallel):
    """``MMFullyShardedDataParallel`` that also moves the frozen CLIP to the
    process's GPU. The frozen CLIP lives outside the module tree (it is not
    trained and not checkpointed), so FSDP neither shards nor moves it; only
    the prompt parameters are sharded. The example config
    ``configs/examples/coop_vitl14_b2n_imagenet_fsdp.py`` selects it."""

    def __init__(self, module, device_id=None, **kwargs):
        if device_id is not None:
            device = torch.device('cuda', device_id) if isinstance(
                device_id, int) else torch.device(device_id)
            from ..clip import FrozenCLIP
            for sub in module.modules():
                if isinstance(sub, FrozenCLIP):
                    sub.to(device)
        super().__init__(module=module, device_id=device_id, **kwargs)
