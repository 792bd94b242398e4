"""How close a measured step runs to the device's matmul limit.

Two numbers, both taken in the process that runs the steps:

* the **probe**: the device's dense matmul throughput (GFLOP/s) in a given
  dtype, measured by timing the products of a ViT-B block and a square one
  for a short while (:func:`matmul_probe`); the best shape is the limit.
  The benchmark runs it as short bursts between the timed steps and takes
  their median (:class:`ProbeBursts`): on a shared CPU the throughput
  drifts by +-15 % within seconds (measured here: 84-132 GFLOP/s for the
  same product), and a probe taken before or after the steps was 30 %
  off the rate the steps themselves saw;
* the **FLOPs of a step**, counted from the shapes of the operations that
  step really runs (:func:`count_flops`: torch's FLOP formulas, with
  formulas added for the CPU's fused attention kernels and for
  ``nn.MultiheadAttention``'s fused inference kernel, which torch does not
  count: the frozen image pass without autograd runs its projections and
  attention products inside that one operation). Matmuls, convolutions and attention products are counted,
  forward and backward; elementwise work is not.

The efficiency of a phase is ``FLOPs / step time / probe``
(:func:`efficiency`); ``tools/analysis_tools/benchmark.py`` prints it and
writes it to its JSON.
"""
import statistics
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

#: (m, k, n) of the probe's products: a ViT-B block's projections over the
#: tokens of 4 images (qkv, MLP up, MLP down; 4 x 197 rows) and a square one
PROBE_SHAPES: Tuple[Tuple[int, int, int], ...] = ((788, 768, 2304),
                                                  (788, 768, 3072),
                                                  (788, 3072, 768),
                                                  (1024, 1024, 1024))


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def matmul_probe(device, dtype: torch.dtype = torch.float32,
                 seconds: float = 0.6,
                 shapes: Sequence[Tuple[int, int, int]] = PROBE_SHAPES
                 ) -> float:
    """The best GFLOP/s of ``a @ b`` over ``shapes``, each timed for about
    ``seconds / len(shapes)`` after one warm-up product."""
    device = torch.device(device)
    best = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device).to(dtype)
        b = torch.randn(k, n, device=device).to(dtype)
        torch.mm(a, b)  # warm-up (kernel selection, allocation)
        _sync(device)
        reps, start = 0, time.perf_counter()
        while True:
            for _ in range(4 if device.type == 'cuda' else 1):
                torch.mm(a, b)
                reps += 1
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / len(shapes):
                break
        best = max(best, 2 * m * k * n * reps / elapsed / 1e9)
    return best


class ProbeBursts:
    """The matmul probe as bursts of ``seconds`` each, taken between the
    timed steps of a phase (``burst()`` before each step and after the
    last); ``gflops`` is their median, the throughput the device gave
    while the steps ran."""

    def __init__(self, device, dtype: torch.dtype = torch.float32,
                 seconds: float = 0.2):
        self.device, self.dtype, self.seconds = device, dtype, seconds
        #: GFLOP/s of each burst, in order
        self.values: List[float] = []

    def burst(self) -> None:
        self.values.append(matmul_probe(self.device, self.dtype,
                                        self.seconds))

    @property
    def gflops(self) -> float:
        return statistics.median(self.values) if self.values else 0.0


def _register_cpu_attention_formulas() -> None:
    """torch counts the CUDA attention kernels but not the CPU's fused
    (flash) kernel, nor the fused inference kernel of
    ``nn.MultiheadAttention``; count them."""
    aten = torch.ops.aten
    forward = aten._scaled_dot_product_flash_attention_for_cpu
    backward = aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(forward, get_raw=True)
    def _forward_flops(query, key, value, *args, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query.shape, key.shape,
                                            value.shape)

    @flop_counter.register_flop_formula(backward, get_raw=True)
    def _backward_flops(grad_out, query, key, value, *args, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(
            grad_out.shape, query.shape, key.shape, value.shape)

    @flop_counter.register_flop_formula(
        aten._native_multi_head_attention, get_raw=True)
    def _fused_mha_flops(query, key, value, embed_dim, num_head, *args,
                         **kwargs) -> int:
        return native_mha_flops(query.shape, key.shape, int(embed_dim))


def native_mha_flops(query_shape, key_shape, embed_dim: int) -> int:
    """FLOPs of ``aten._native_multi_head_attention`` (the inference fast
    path of ``nn.MultiheadAttention``, batch-first (B, L, E) inputs): the
    packed q/k/v projections, QK^T and AV, and the output projection."""
    batch, lq, lk, e = query_shape[0], query_shape[1], key_shape[1], embed_dim
    projections = 2 * batch * (lq + 2 * lk) * e * e + 2 * batch * lq * e * e
    return projections + 2 * (2 * batch * lq * lk * e)


class _FlopCount(TorchDispatchMode):
    """Adds up torch's FLOP formulas over the operations dispatched while
    it is active. (``FlopCounterMode`` does the same plus a per-module
    breakdown whose autograd hooks break some graphs; none is needed.)"""

    def __init__(self):
        super().__init__()
        self.flops = 0
        #: operation name -> [calls, FLOPs] (FLOPs None: no formula)
        self.by_op: Dict[str, list] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_counter.flop_registry.get(func._overloadpacket)
        flops = (None if formula is None else
                 formula(*args, **kwargs, out_val=out))
        entry = self.by_op.setdefault(str(func._overloadpacket),
                                      [0, None if flops is None else 0])
        entry[0] += 1
        if flops is not None:
            self.flops += flops
            entry[1] += flops
        return out


def count_flops(fn: Callable[[], object], by_op: bool = False):
    """FLOPs of the matmul-like operations that ``fn()`` runs (forward and,
    if it calls backward, backward); with ``by_op`` also a dict operation
    name -> (calls, FLOPs or None where torch has no formula: the
    operations the count leaves out)."""
    _register_cpu_attention_formulas()
    with _FlopCount() as counter:
        fn()
    if by_op:
        return counter.flops, {k: tuple(v) for k, v in counter.by_op.items()}
    return counter.flops


def efficiency(flops: float, seconds: float, probe_gflops: float
               ) -> Dict[str, float]:
    """Achieved GFLOP/s of ``flops`` done in ``seconds`` and its fraction of
    the probe's."""
    achieved = flops / seconds / 1e9 if seconds > 0 else 0.0
    return dict(achieved_gflops=achieved,
                probe_fraction=achieved / probe_gflops
                if probe_gflops > 0 else 0.0)
