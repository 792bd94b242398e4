"""Speed, memory and text-encoder work of a prompt-learning method, and the
per-image formulation of the original implementations to compare with.

Used by ``projects/lab/tools/benchmark.py``; the measurement functions run
on any :class:`~mmpl.models.PromptCLIPClassifier` built from a config.

Two formulations of the same model (same weights, same inputs):

* ``mmpl``: the model as configured: text sequences cut after the last EOT,
  all B*C prompts of a batch in one (chunked) text-encoder call, frozen
  image features and anchors computed once, and in evaluation the text
  features of image-independent prompts computed once per class set.
* ``reference``: the shape of the original code (CoCoOp's ``for pts_i,
  imf_i in zip(prompts, image_features)``): a Python loop over the images of
  the batch when the text prompts depend on the image (CoCoOp, CTP, FTP),
  else one text pass per batch as the original CoOp/MaPLe code; always the
  full 77-token sequences, one text-encoder call per pass (no chunking), no
  text cache in evaluation, fp32. In training the graphs of all images are
  kept and one backward runs on the mean loss, as in the original.

Both compute the same function: :func:`max_logit_difference` checks it.
"""
import contextlib
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import open_clip
import torch
from mmpretrain.structures import DataSample
from torch import Tensor

from mmpl.clip.text_plan import TextEncodingPlan, whole_sequences
from .efficiency import ProbeBursts, count_flops, efficiency, matmul_probe

FORMULATIONS = ('mmpl', 'reference')
PHASES = ('train', 'eval')


def benchmark_classnames(num_classes: int) -> List[str]:
    """``num_classes`` real class names (ImageNet's, as open_clip ships
    them; repeated with a suffix beyond 1000), so the prompts have the
    token lengths of a real benchmark."""
    names = open_clip.IMAGENET_CLASSNAMES
    return [names[i % len(names)] + ('' if i < len(names) else
                                     f' {i // len(names)}')
            for i in range(num_classes)]


def synthetic_batch(model, batch_size: int, seed: int = 0):
    """(B, 3, S, S) normalised random images at the model's resolution and
    their DataSamples with random labels over the current class set."""
    gen = torch.Generator().manual_seed(seed)
    size = model.clip.model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(batch_size, 3, size, size, generator=gen)
    labels = torch.randint(len(model.classnames), (batch_size, ),
                           generator=gen)
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    return images.to(model.clip.device), samples


def loops_over_images(model) -> bool:
    """Whether the original implementation of this method runs the text
    encoder image by image (image-conditioned text prompts)."""
    needs = model.text_prompt.needs
    return (needs.frozen_image or needs.image_tokens
            or model.text_prompt.encodes_jointly)


def reference_plan(tower, eot_index: Tensor, classes: int = 1,
                   **unused) -> TextEncodingPlan:
    """The text planner of the reference formulation
    (``FrozenCLIP.text_planner``): every sequence at the full context
    length (77 tokens; past the prompts' EOT cut, the padding token of the
    original code's prompts), all in one block loop: no length groups, no
    chunks, no shared prefix."""
    return whole_sequences(eot_index, classes, tower.context_length)


@contextlib.contextmanager
def formulation(model, name: str) -> Iterator[None]:
    """Run ``model`` as the ``mmpl`` or the ``reference`` formulation."""
    if name not in FORMULATIONS:
        raise ValueError(f'formulation {name!r} is not one of {FORMULATIONS}')
    clip = model.clip
    saved = (clip.grad_checkpointing, model.text_chunk_size,
             model.cache_eval_text, clip.text_planner)
    if name == 'reference':
        clip.grad_checkpointing = False
        model.text_chunk_size = None
        model.cache_eval_text = False
        clip.text_planner = reference_plan
    model.clear_text_cache()
    try:
        yield
    finally:
        (clip.grad_checkpointing, model.text_chunk_size,
         model.cache_eval_text, clip.text_planner) = saved
        model.clear_text_cache()


def is_reference(model) -> bool:
    """Whether ``model`` runs the reference formulation now."""
    return model.clip.text_planner is reference_plan


def _per_image(model, name: str) -> bool:
    return name == 'reference' and loops_over_images(model)


def _forward(model, images: Tensor, name: str) -> Tensor:
    """(B, C) logits; call inside ``formulation(model, name)``."""
    if _per_image(model, name):
        return torch.cat([model.forward_features(images[i:i + 1]).logits
                          for i in range(images.shape[0])])
    return model.forward_features(images).logits


def _loss(model, images: Tensor, samples: Sequence[DataSample],
          name: str) -> Tensor:
    """The scalar training loss (all the model's losses; per image then
    averaged in the per-image formulation); call inside ``formulation``."""
    if _per_image(model, name):
        per_image = [
            model.parse_losses(model.loss(images[i:i + 1],
                                          samples[i:i + 1]))[0]
            for i in range(images.shape[0])
        ]
        return torch.stack(per_image).mean()
    return model.parse_losses(model.loss(images, samples))[0]


def logits(model, images: Tensor, name: str) -> Tensor:
    """(B, C) logits of formulation ``name`` (in the model's mode)."""
    with formulation(model, name):
        return _forward(model, images, name)


def training_loss(model, images: Tensor, samples: Sequence[DataSample],
                  name: str) -> Tensor:
    """The scalar training loss of formulation ``name``."""
    with formulation(model, name):
        return _loss(model, images, samples, name)


def max_logit_difference(model, images: Tensor) -> float:
    """max |logits(mmpl) - logits(reference)| in evaluation mode."""
    model.eval()
    with torch.no_grad():
        fast = logits(model, images, 'mmpl')
        ref = logits(model, images, 'reference')
    return float((fast - ref).abs().max())


@dataclass
class TextWork:
    """The text encoder's work: passes (encode calls), the batched calls
    of its blocks' attention they made (one per length group / chunk,
    plus one per shared-prefix pass; packed class prompts run each block's
    projections and MLP once over all of them), the class sequences, and
    every token that went through the blocks (shared prefixes included
    once per image), as the plans of the encoder report them
    (:class:`~mmpl.clip.text_plan.TextEncodingPlan`). With gradient
    checkpointing, recomputations are not counted."""
    passes: int = 0
    block_calls: int = 0
    sequences: int = 0
    tokens: int = 0
    prefix_tokens: int = 0  # of ``tokens``

    def add(self, plan: TextEncodingPlan) -> None:
        """Count one encoder call (a ``FrozenCLIP`` text observer)."""
        self.passes += 1
        self.block_calls += plan.block_calls
        self.sequences += plan.sequences
        self.tokens += plan.tokens
        self.prefix_tokens += plan.prefix_tokens


@contextlib.contextmanager
def count_text_work(model) -> Iterator[TextWork]:
    """Count the text encoder's work while the context is open (an
    observer of the CLIP's text plans)."""
    work = TextWork()
    with model.clip.observe_text(work.add):
        yield work


class MemoryProbe:
    """Peak memory of the process (CPU: resident set size, which only a
    fresh process measures per phase) or of the CUDA allocator."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == 'cuda'
        self.baseline = self.current()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.device = device

    def current(self) -> int:
        if self.cuda:
            return torch.cuda.memory_allocated()
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def peak(self) -> int:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class PhaseResult:
    """One phase of one formulation."""
    phase: str
    formulation: str
    images_per_s: float
    step_seconds: List[float]
    peak_bytes: int
    working_bytes: int  # peak minus what was resident before the phase
    text_sequences_per_step: float
    text_tokens_per_step: float
    text_passes_per_step: float
    #: matmul-like FLOPs of one step (eval: of the pass, per batch)
    flops_per_step: int = 0
    #: dtype -> GFLOP/s of the device's matmul probe, in this process: the
    #: compute dtype's is the median of the bursts between the timed steps,
    #: the others (fp32 under --amp, bf16 on CUDA) one burst after them
    probe_gflops: Dict[str, float] = field(default_factory=dict)
    #: GFLOP/s of each probe burst in the compute dtype (before each timed
    #: step and after the last)
    probe_bursts: List[float] = field(default_factory=list)
    #: the probe dtype the step computes in (fp32, or the AMP dtype)
    compute_dtype: str = 'float32'
    achieved_gflops: float = 0.0
    #: achieved_gflops / probe_gflops[compute_dtype]
    probe_fraction: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _amp_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == 'cuda' else torch.bfloat16


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_amp_dtype(device))


def _probe_dtypes(device: torch.device, amp: bool) -> List[torch.dtype]:
    """fp32, the AMP dtype when it is used, and bf16 on CUDA."""
    dtypes = [torch.float32]
    if amp:
        dtypes.append(_amp_dtype(device))
    if device.type == 'cuda' and torch.bfloat16 not in dtypes:
        dtypes.append(torch.bfloat16)
    return dtypes


def _train_step(model, images, samples, name: str, amp: bool):
    """One SGD step (forward, backward, update) as a closure."""
    device = model.clip.device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-3) if params else None

    def step():
        with _autocast(device, amp):
            loss = _loss(model, images, samples, name)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return step


def _eval_step(model, images, name: str, amp: bool):
    """One evaluation batch as a closure."""
    device = model.clip.device

    def step():
        with torch.no_grad(), _autocast(device, amp):
            _forward(model, images, name)

    return step


def measure(model, phase: str, name: str, batch_size: int, steps: int,
            warmup: int = 1, amp: bool = False,
            probe_seconds: float = 0.2) -> PhaseResult:
    """Time ``steps`` training steps (``phase='train'``: forward, backward,
    SGD step; median step time after ``warmup`` steps) or one evaluation
    pass of ``steps`` batches (``'eval'``: after ``warmup`` batches, the text
    cache is cleared as at the start of a real evaluation; images/s over
    the whole pass) of formulation ``name``. Between the timed steps it
    probes the device's matmul throughput in the step's dtype (bursts of
    ``probe_seconds``, :class:`~.efficiency.ProbeBursts`), then counts the
    FLOPs of one step (eval: of a fresh pass, per batch), so the result
    says how close the step runs to the device's limit. For a per-phase
    CPU peak, call it in a fresh process."""
    if phase not in PHASES:
        raise ValueError(f'phase {phase!r} is not one of {PHASES}')
    if amp and name == 'reference':
        raise ValueError('the reference formulation runs in fp32')
    device = model.clip.device
    compute = _amp_dtype(device) if amp else torch.float32
    bursts = ProbeBursts(device, compute, probe_seconds)
    images, samples = synthetic_batch(model, batch_size)
    step = (_train_step(model, images, samples, name, amp)
            if phase == 'train' else _eval_step(model, images, name, amp))
    with formulation(model, name):
        model.train(phase == 'train')
        _sync(device)
        probe = MemoryProbe(device)  # warm-up included: same peak
        for _ in range(warmup):
            step()
        if phase == 'eval':
            model.train()
            model.eval()  # a fresh evaluation: text cache empty
        _sync(device)
        times = []
        with count_text_work(model) as work:
            for _ in range(steps):
                bursts.burst()
                start = time.perf_counter()
                step()
                _sync(device)
                times.append(time.perf_counter() - start)
        bursts.burst()
        peak = probe.peak()
        # the work of one step, counted outside the timing (eval: a fresh
        # pass of the same batches, text cache empty, per batch)
        if phase == 'eval':
            model.train()
            model.eval()
        flops = count_flops(lambda: [step() for _ in range(
            1 if phase == 'train' else steps)])
        flops_per_step = flops // (1 if phase == 'train' else steps)
    if phase == 'train':
        step_time = statistics.median(times)
    else:  # the whole pass, text encoded once where the model caches it
        step_time = sum(times) / steps
    images_per_s = batch_size / step_time
    compute_dtype = str(compute).replace('torch.', '')
    probes = {str(dtype).replace('torch.', ''):
              bursts.gflops if dtype == compute else
              matmul_probe(device, dtype, probe_seconds)
              for dtype in _probe_dtypes(device, amp)}
    return PhaseResult(
        phase=phase, formulation=name, images_per_s=images_per_s,
        step_seconds=times, peak_bytes=peak,
        working_bytes=max(peak - probe.baseline, 0),
        text_sequences_per_step=work.sequences / steps,
        text_tokens_per_step=work.tokens / steps,
        text_passes_per_step=work.passes / steps,
        flops_per_step=flops_per_step, probe_gflops=probes,
        probe_bursts=bursts.values, compute_dtype=compute_dtype,
        **efficiency(flops_per_step, step_time, probes[compute_dtype]))


def build_benchmark_model(config: str,
                          arch: str = 'ViT-B-16',
                          num_classes: int = 50,
                          device: str = 'cpu',
                          seed: int = 0,
                          cfg_options: Optional[dict] = None):
    """The config's model on ``arch`` with random weights (no download),
    ``num_classes`` real class names, on ``device``. The same seed gives
    the same weights in every process."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mmpl  # noqa: F401  (registers the modules)
    from mmpl.utils.config_file import read_config
    from mmpl.utils.config_tools import replace_clip

    cfg = read_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    replace_clip(cfg, dict(arch=arch, pretrained=None))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.set_classes(benchmark_classnames(num_classes))
    return model.to(device)
