"""Resume and ``load_from`` under torch >= 2.6 with mmengine 0.10.7.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
defaults to ``weights_only=True`` and refuses the few non-tensor objects an
mmengine checkpoint holds (the message hub's ``HistoryBuffer`` and numpy
scalars/arrays). Allow-listing exactly those plain data types keeps the
safe loader on (no arbitrary code runs when loading a checkpoint) and needs
no environment variable.
"""
import torch


def _numpy_safe_globals() -> list:
    import numpy as np
    out = [np.ndarray, np.dtype]
    try:  # numpy 2.x
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    out += [_reconstruct, scalar]
    out += [type(np.dtype(t)) for t in ('float64', 'float32', 'int64',
                                         'int32', 'bool', 'uint8')]
    return out


def register_checkpoint_safe_globals() -> None:
    """Allow the plain data types of mmengine checkpoints in
    ``torch.load(weights_only=True)``. Idempotent."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4: weights_only is not the default
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    add([HistoryBuffer] + _numpy_safe_globals())


_BUFFER_TAG = '__history_buffer__'


def to_plain_data(obj):
    """Recursively turn numpy values and mmengine ``HistoryBuffer`` objects
    into plain Python data (lists, floats, ints, dicts)."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {_BUFFER_TAG: True, 'log_history': logs.tolist(),
                'count_history': counts.tolist(),
                'max_length': obj.max_length}
    if isinstance(obj, dict):
        return {k: to_plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain_data(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def from_plain_data(obj):
    """Inverse of :func:`to_plain_data` for the message-hub buffers."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if isinstance(obj, dict):
        if obj.get(_BUFFER_TAG):
            return HistoryBuffer(obj['log_history'], obj['count_history'],
                                 obj['max_length'])
        return {k: from_plain_data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain_data(v) for v in obj]
    return obj


def rng_state() -> dict:
    """Python, NumPy and torch (CPU + CUDA) generator states, as plain data
    and tensors."""
    import random

    import numpy as np
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = dict(python=[version, list(state), gauss],
               numpy=[kind, keys.tolist(), pos, has_gauss, cached],
               torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out['cuda'] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    import random

    import numpy as np
    version, py_state, gauss = state['python']
    random.setstate((version, tuple(py_state), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos,
                         has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
