"""How close a measured step runs to the device's matmul limit.

Two numbers, both taken in the process that runs the steps:

* the **probe**: the device's dense matmul throughput (GFLOP/s) in a given
  dtype, measured by timing the products of a ViT-B block and a square one
  for a short while; the best shape is the limit. The benchmark runs it as
  short bursts between the timed steps and takes their median
  (:class:`ProbeBursts`; :func:`matmul_probe` is one burst): on a shared
  CPU the throughput drifts within seconds (docs/performance.md);
* the **FLOPs of a step**, counted from the shapes of the operations that
  step really runs (:func:`count_flops`: torch's FLOP formulas, with
  formulas added for the CPU's fused attention kernels and for
  ``nn.MultiheadAttention``'s fused inference kernel, which torch does not
  count: the frozen image pass without autograd runs its projections and
  attention products inside that one operation). Matmuls, convolutions
  and attention products are counted, forward and backward; elementwise
  work is not.

The efficiency of a phase is ``FLOPs / step time / probe``
(:func:`efficiency`); ``projects/lab/tools/benchmark.py`` prints it and
writes it to its JSON.
"""
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

#: (m, k, n) of the probe's products: a ViT-B block's projections over the
#: tokens of 4 images (qkv, MLP up, MLP down; 4 x 197 rows) and a square one
PROBE_SHAPES: Tuple[Tuple[int, int, int], ...] = ((788, 768, 2304),
                                                  (788, 768, 3072),
                                                  (788, 3072, 768),
                                                  (1024, 1024, 1024))


#: a large square product added on CUDA, where the block-sized products
#: above are launch-bound (not measured on a GPU yet: no session had one)
CUDA_PROBE_SHAPES = PROBE_SHAPES + ((8192, 8192, 8192), )


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class ProbeBursts:
    """The device's dense matmul throughput in ``dtype``, measured in
    bursts: :meth:`burst` times each product of ``shapes`` (default:
    :data:`PROBE_SHAPES`, plus :data:`CUDA_PROBE_SHAPES`' square on CUDA)
    for about ``seconds / len(shapes)`` and keeps the best GFLOP/s. The
    benchmark calls it before each timed step and after the last; ``gflops``
    is the median of the bursts. The operands and outputs are allocated
    (and each product run once) here, so that a burst allocates nothing
    and a phase's peak memory does not count the probe's operands."""

    def __init__(self, device, dtype: torch.dtype = torch.float32,
                 seconds: float = 0.2,
                 shapes: Optional[Sequence[Tuple[int, int, int]]] = None):
        self.device = torch.device(device)
        self.seconds = seconds
        if shapes is None:
            shapes = (CUDA_PROBE_SHAPES if self.device.type == 'cuda'
                      else PROBE_SHAPES)
        self.operands = []
        for m, k, n in shapes:
            a = torch.randn(m, k, device=self.device).to(dtype)
            b = torch.randn(k, n, device=self.device).to(dtype)
            out = torch.mm(a, b)  # warm-up: kernel selection
            self.operands.append((a, b, out))
        _sync(self.device)
        #: GFLOP/s of each burst, in order
        self.values: List[float] = []

    def burst(self) -> float:
        """One burst: the best GFLOP/s over the shapes (kept in
        ``values``)."""
        best = 0.0
        for a, b, out in self.operands:
            reps, start = 0, time.perf_counter()
            while True:
                for _ in range(4 if self.device.type == 'cuda' else 1):
                    torch.mm(a, b, out=out)
                    reps += 1
                _sync(self.device)
                elapsed = time.perf_counter() - start
                if elapsed >= self.seconds / len(self.operands):
                    break
            flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
            best = max(best, flops * reps / elapsed / 1e9)
        self.values.append(best)
        return best

    @property
    def gflops(self) -> float:
        return statistics.median(self.values) if self.values else 0.0


def matmul_probe(device, dtype: torch.dtype = torch.float32,
                 seconds: float = 0.6,
                 shapes: Optional[Sequence[Tuple[int, int, int]]] = None
                 ) -> float:
    """One burst of :class:`ProbeBursts` of ``seconds``."""
    return ProbeBursts(device, dtype, seconds, shapes).burst()


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
