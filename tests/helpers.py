"""Helpers shared by several test modules (imported as ``helpers``; pytest
puts this folder on ``sys.path``)."""
import importlib.util
import os.path as osp

import torch
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(rel_path: str):
    """Import a script under tools/ (not a package) as a module."""
    name = 'tool_' + rel_path.replace('/', '_')[:-3]
    spec = importlib.util.spec_from_file_location(name,
                                                  osp.join(ROOT, rel_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_blocks(blocks):
    """Forward pre-/post-hooks: the input and output of every block.
    Returns (inputs, outputs, handles); remove the handles after use."""
    inputs, outputs, handles = {}, {}, []
    for i, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(
            lambda m, args, i=i: inputs.__setitem__(i, args[0].detach())))
        handles.append(block.register_forward_hook(
            lambda m, args, out, i=i: outputs.__setitem__(i, out.detach())))
    return inputs, outputs, handles


def samples(labels):
    """DataSamples carrying ``labels``."""
    return [DataSample().set_gt_label(int(y)) for y in labels]


def randomize(module, std=0.3):
    """Visible, non-degenerate parameters (the tiny CLIP is random)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * std)
