"""PlainCheckpointHook: checkpoints of plain data, with the model's rebuild
meta, checked against the model on load."""
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...models.classifier import shape_mismatch
from ...utils.errors import CheckpointError
from ..checkpoint import (from_plain_data, rng_state, set_rng_state,
                          to_plain_data)
from ..utils import unwrap_model


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Keep checkpoints to plain data so that they load with
    ``torch.load(weights_only=True)`` (no arbitrary pickled objects: a
    checkpoint from an untrusted source cannot run code), and add the
    model's rebuild meta under ``meta['mmpl']`` (architecture, weights,
    class names, mmpl version), the one place it is stored. On load
    (``load_from``, ``--resume``, before the weights reach the model) it
    checks the checkpoint against the model, naming both sides from that
    meta.

    It also saves the Python/NumPy/torch generator states and restores them
    on resume, so that an interrupted run continues with the same
    augmentations as an uninterrupted one. The model's ``state_dict``
    already holds only the trainable prompt parameters (the frozen CLIP is
    not part of it).
    """

    priority = 'VERY_LOW'  # after every hook that adds to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        if hasattr(model, 'checkpoint_meta'):
            checkpoint.setdefault('meta', {})['mmpl'] = model.checkpoint_meta()
        for key in list(checkpoint):
            if key not in ('state_dict', 'optimizer'):
                checkpoint[key] = to_plain_data(checkpoint[key])
        checkpoint['rng_state'] = rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        state_dict = checkpoint.get('state_dict') or {}
        if any(k.startswith('module.') for k in state_dict):
            state_dict = {k[len('module.'):] if k.startswith('module.') else
                          k: v for k, v in state_dict.items()}
        mismatch = shape_mismatch(model, state_dict)
        if mismatch:
            key, theirs, mine = mismatch
            meta = (checkpoint.get('meta') or {}).get('mmpl') or {}
            here = getattr(model, 'checkpoint_meta', dict)()
            raise CheckpointError(
                f'checkpoint does not fit this model: {key} has shape '
                f'{theirs} in the checkpoint ({_describe(meta)}) and {mine} '
                f'here ({_describe(here)})')
        self._check_trained_classes(runner, checkpoint)
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain_data(
                checkpoint['message_hub'])
        if runner._resume and 'rng_state' in checkpoint:
            set_rng_state(checkpoint['rng_state'])

    @staticmethod
    def _check_trained_classes(runner, checkpoint: dict) -> None:
        """Testing a base-to-new checkpoint: its training classes are the
        base split's (same count), else the checkpoint belongs to another
        dataset."""
        loop = getattr(runner, '_test_loop', None)
        trained = ((checkpoint.get('meta') or {}).get('mmpl') or {}).get(
            'classes')
        if runner._resume or not trained or \
                not hasattr(loop, 'split_classes'):
            return
        base = loop.split_classes().get('base')
        if base and len(base) != len(trained):
            raise CheckpointError(
                f'checkpoint was trained on {len(trained)} classes '
                f'({", ".join(trained[:3])}, ...) and this config\'s base '
                f'split has {len(base)} ({", ".join(base[:3])}, ...). Test '
                'it with the config (dataset) it was trained on')


def _describe(meta: dict) -> str:
    """``'arch X, 10 classes'`` from a model's checkpoint meta."""
    text = f'arch {meta.get("arch", "?")}'
    if meta.get('classes'):
        text += f', {len(meta["classes"])} classes'
    return text
