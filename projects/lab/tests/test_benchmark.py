"""The speed-ups are exact: every method family computes the same logits,
losses and gradients as the per-image formulation of the original code
(full 77-token sequences, a loop over images); the benchmark tool measures
both and reports the ratios."""
import json
import os.path as osp
import statistics
import subprocess
import sys

import pytest
import torch

from mmpl.testing import TINY_ARCH
from mmpl_lab import speed as bm
from helpers import ROOT, assert_close_to_scale, load_tool, randomize

TINY = TINY_ARCH
FAMILIES = {
    'coop': 'configs/coop/coop_vitb16_b2n_eurosat.py',
    'kgcoop': 'configs/coop/kgcoop_vitb16_b2n_eurosat.py',
    'cocoop': 'configs/cocoop/cocoop_vitb16_b2n_eurosat.py',
    'ctp_tft': 'configs/tomm/ctp_tft_vitb16_b2n_eurosat.py',
    'ftp_tvp': 'configs/mpl/ftp_tvp_vitb16_b2n_eurosat.py',
    'maple': 'configs/maple/maple_vitb16_b2n_eurosat.py',
    'dgprompt': 'configs/dgprompt/dgprompt_vitb16_b2n_eurosat.py',
    'promptsrc': 'configs/promptsrc/promptsrc_vitb16_b2n_eurosat.py',
}
tool = load_tool('projects/lab/tools/benchmark.py')


def _model(family, num_classes=7, **options):
    if family == 'ctp_tft':
        # the alignment loss's text-to-image term contrasts the images of a
        # batch: the per-image formulation cannot compute it (logits and the
        # CE term are compared)
        options.setdefault('model.extra_losses', [])
    torch.manual_seed(0)
    model = bm.build_benchmark_model(osp.join(ROOT, FAMILIES[family]), TINY,
                                     num_classes, cfg_options=options)
    randomize(model, std=0.5)  # prompts that matter (some start at zero)
    return model


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}


def _assert_equals_reference(model, shares_prefix: bool):
    images, samples = bm.synthetic_batch(model, 3)
    lengths = model._current_class_set().tokens.eot_index
    assert len(set(lengths.tolist())) >= 3

    assert bm.max_logit_difference(model, images) < 1e-5
    with bm.count_text_work(model) as work:
        bm.logits(model, images, 'mmpl')
    assert (work.prefix_tokens > 0) == shares_prefix
    with bm.count_text_work(model) as work:
        bm.logits(model, images, 'reference')
    assert work.prefix_tokens == 0  # the reference shares nothing

    model.train()
    grads, losses = {}, {}
    for form in bm.FORMULATIONS:
        model.zero_grad(set_to_none=True)
        loss = bm.training_loss(model, images, samples, form)
        loss.backward()
        losses[form], grads[form] = loss.item(), _grads(model)
    assert losses['mmpl'] == pytest.approx(losses['reference'], abs=1e-5)
    assert grads['mmpl'].keys() == grads['reference'].keys()
    assert grads['mmpl']  # something trains
    scale = max(float(g.abs().max()) for g in grads['reference'].values())
    for name, g in grads['mmpl'].items():
        ref = grads['reference'][name]
        # zero-in-theory gradients (a key bias) are float noise in both
        assert_close_to_scale(g, ref, scale=scale, msg=name)


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_fast_path_equals_per_image_reference(family):
    # Chunks of 5 sequences over class names of 4 different lengths: the
    # length groups, the chunking, the batching and (except for CTP's
    # per-class contexts) the shared [SOS] ctx prefix all take part.
    model = _model(family, **{'model.text_chunk_size': 5})
    _assert_equals_reference(model, shares_prefix=family != 'ctp_tft')


@pytest.mark.parametrize('family', ['cocoop', 'ctp_tft'])
def test_grad_checkpointing_equals_per_image_reference(family):
    model = _model(family, **{'model.clip.grad_checkpointing': True})
    _assert_equals_reference(model, shares_prefix=family != 'ctp_tft')


def test_reference_runs_77_tokens_and_loops_over_images_of_cocoop(
        monkeypatch):
    from mmpl.clip import text_plan
    monkeypatch.setattr(text_plan, 'GROUP_PAD_WASTE', 0.0)  # a group per EOT
    model = _model('cocoop', num_classes=6)
    images, _ = bm.synthetic_batch(model, 2)
    eot = model._current_class_set().tokens.eot_index
    model.eval()
    work = {}
    for form in bm.FORMULATIONS:
        with torch.no_grad(), bm.count_text_work(model) as w:
            bm.logits(model, images, form)
        work[form] = w
    assert work['reference'].passes == 2  # one per image
    assert work['reference'].block_calls == 2
    assert work['reference'].tokens == 2 * 6 * model.clip.context_length
    # mmpl: one pass over all B*C sequences: the shared [SOS] ctx prefix
    # (P = 5) once per image, then each length group of classes cut after
    # its own EOT
    prefix = 1 + model.text_prompt.n_ctx
    assert work['mmpl'].passes == 1
    assert work['mmpl'].sequences == 12
    assert work['mmpl'].tokens == 2 * prefix + 2 * int(
        (eot + 1 - prefix).sum())
    assert work['mmpl'].block_calls == 1 + len(set(eot.tolist()))


def test_reference_encodes_text_once_per_batch_for_coop():
    model = _model('coop', num_classes=4)
    assert not bm.loops_over_images(model)
    assert bm.loops_over_images(_model('ctp_tft', num_classes=4))
    images, _ = bm.synthetic_batch(model, 3)
    model.eval()
    with torch.no_grad(), bm.count_text_work(model) as w:
        bm.logits(model, images, 'reference')
    assert (w.passes, w.sequences) == (1, 4)


def test_formulation_restores_the_model():
    model = _model('cocoop', **{'model.text_chunk_size': 3})
    with bm.formulation(model, 'reference'):
        assert bm.is_reference(model) and model.text_chunk_size is None
    assert not bm.is_reference(model) and model.text_chunk_size == 3
    assert model.cache_eval_text
    with pytest.raises(ValueError, match='formulation'):
        with bm.formulation(model, 'per-image'):
            pass


def test_measure_counts_text_once_per_evaluation_for_coop():
    model = _model('coop', num_classes=5)
    result = bm.measure(model, 'eval', 'mmpl', batch_size=2, steps=3)
    assert result.text_passes_per_step == pytest.approx(1 / 3)
    assert result.images_per_s > 0 and result.peak_bytes > 0
    ref = bm.measure(model, 'eval', 'reference', batch_size=2, steps=3)
    assert ref.text_passes_per_step == 1  # the original: once per batch


def test_flop_count_of_a_product_and_of_cpu_fused_attention():
    from mmpl_lab.efficiency import count_flops
    a, b = torch.randn(6, 5), torch.randn(5, 4)
    assert count_flops(lambda: a @ b) == 2 * 6 * 5 * 4
    # (B, H, L, d): QK^T and AV are 2 * 2*L*L*d per head; backward 2.5x
    q = torch.randn(2, 3, 8, 16, requires_grad=True)
    forward = 2 * 3 * 2 * (2 * 8 * 8 * 16)
    attention = torch.nn.functional.scaled_dot_product_attention
    assert count_flops(lambda: attention(q, q, q)) == forward
    assert count_flops(lambda: attention(q, q, q).sum().backward()) == \
        forward * 7 // 2


def test_flop_count_of_the_fused_inference_attention():
    """Without autograd, ``nn.MultiheadAttention`` (the frozen image pass)
    runs one fused operation that torch does not count; it is counted as
    the same projections and products its training path runs."""
    from mmpl_lab.efficiency import count_flops
    attn = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(3, 7, 16)
    with torch.no_grad():  # the fast path
        fused = count_flops(lambda: attn(x, x, x, need_weights=False))
    x.requires_grad_(True)  # its decomposition: linears and bmm
    decomposed = count_flops(lambda: attn(x, x, x, need_weights=False))
    expected = 2 * 3 * 7 * 16 * 16 * 4 + 2 * 2 * 3 * 7 * 7 * 16
    assert fused == decomposed == expected


def test_measure_reports_flops_and_efficiency_against_the_probe():
    model = _model('maple', num_classes=5)
    train = bm.measure(model, 'train', 'mmpl', batch_size=2, steps=2,
                       probe_seconds=0.05)
    evaluation = bm.measure(model, 'eval', 'mmpl', batch_size=2, steps=2,
                            probe_seconds=0.05)
    for result in (train, evaluation):
        assert result.compute_dtype == 'float32'
        assert result.probe_gflops['float32'] > 0
        seconds = result.step_seconds
        step = (statistics.median(seconds) if result.phase == 'train'
                else sum(seconds) / len(seconds))
        assert result.achieved_gflops == pytest.approx(
            result.flops_per_step / step / 1e9)
        assert result.probe_fraction == pytest.approx(
            result.achieved_gflops / result.probe_gflops['float32'])
    # a training step also runs the backward of both towers
    assert train.flops_per_step > evaluation.flops_per_step > 0


def test_probe_bursts_run_between_the_timed_steps(monkeypatch):
    """The probe is a burst before every timed step and one after the
    last, outside the steps' timing, and the phase's probe is their
    median (one probe after the phase missed the throughput drift the
    steps saw)."""
    import time

    from mmpl_lab import efficiency
    model = _model('coop', num_classes=5)
    events, readings = [], iter([100.0, 300.0, 50.0, 120.0])

    def fake_burst(self):
        events.append('probe')
        time.sleep(0.5)  # longer than a tiny step: shows in a timed one
        self.values.append(next(readings))
        return self.values[-1]

    def counted_loss(*args):
        events.append('step')
        return loss(*args)

    loss = bm._loss
    monkeypatch.setattr(efficiency.ProbeBursts, 'burst', fake_burst)
    monkeypatch.setattr(bm, '_loss', counted_loss)
    result = bm.measure(model, 'train', 'mmpl', batch_size=2, steps=3,
                        warmup=1, probe_seconds=0.05)
    first, last = events.index('probe'), len(events) - events[::-1].index(
        'probe')
    assert events[first:last] == ['probe', 'step'] * 3 + ['probe']
    assert max(result.step_seconds) < 0.5, result.step_seconds
    assert result.probe_bursts == [100.0, 300.0, 50.0, 120.0]
    assert result.probe_gflops['float32'] == 110.0
    assert result.probe_fraction == pytest.approx(
        result.achieved_gflops / 110.0)


def test_probe_burst_measures_and_allocates_nothing():
    """A real burst reads a positive GFLOP/s and reuses its operands."""
    from mmpl_lab.efficiency import ProbeBursts
    bursts = ProbeBursts('cpu', seconds=0.02, shapes=((64, 64, 64), ))
    out = bursts.operands[0][2]
    pointer = out.data_ptr()
    assert bursts.burst() > 0 and bursts.burst() > 0
    assert out.data_ptr() == pointer and len(bursts.values) == 2
    assert bursts.gflops == pytest.approx(sorted(bursts.values)[0] / 2
                                          + sorted(bursts.values)[1] / 2)


def test_benchmark_tool_in_process(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert tool.main([osp.join(ROOT, FAMILIES['ftp_tvp']), '--arch', TINY,
                      '--batch-size', '2', '--num-classes', '6', '--steps',
                      '2', '--reference', '--in-process', '--out',
                      str(out), '--probe-seconds', '0.05']) == 0
    printed = capsys.readouterr().out
    assert 'FTP+TVP' in printed and 'images/s of the reference' in printed
    assert 'of probe' in printed and 'matmul probe' in printed
    report = json.loads(out.read_text())
    for r in report['results']:
        assert r['flops_per_step'] > 0 and 0 < r['probe_fraction']
    assert report['max_logit_difference'] < 1e-4
    assert {(r['phase'], r['formulation']) for r in report['results']} == {
        ('train', 'mmpl'), ('eval', 'mmpl'), ('train', 'reference'),
        ('eval', 'reference')}
    for phase in ('train', 'eval'):
        assert report['ratios'][phase]['text_token_fraction'] < 0.5
    # never overwrites a file
    assert tool.main([osp.join(ROOT, FAMILIES['coop']), '--arch', TINY,
                      '--out', str(out)]) == 2
    assert 'exists' in capsys.readouterr().err


@pytest.mark.heavy
def test_benchmark_tool_fresh_process_per_phase(tmp_path):
    """The CLI as users run it: each phase is measured in a worker process
    of its own (one phase here: one worker)."""
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'projects/lab/tools/benchmark.py'),
         osp.join(ROOT, FAMILIES['cocoop']), '--arch', TINY, '--batch-size',
         '2', '--num-classes', '5', '--steps', '1', '--phases', 'train',
         '--out', str(out), '--probe-seconds', '0.05'],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report['memory'] == 'per-phase process'
    [result] = report['results']
    assert (result['phase'], result['formulation']) == ('train', 'mmpl')
    assert result['images_per_s'] > 0 and result['flops_per_step'] > 0


def test_benchmark_tool_bad_input_is_one_line(capsys):
    assert tool.main(['configs/nope.py']) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mmpl: error: config not found: 'configs/nope.py'"
    if not torch.cuda.is_available():
        assert tool.main([osp.join(ROOT, FAMILIES['coop']), '--device',
                          'cuda']) == 2
        assert 'no CUDA GPU' in capsys.readouterr().err


def test_profile_step_tool(capsys):
    profile = load_tool('projects/lab/tools/profile_step.py')
    assert profile.main([osp.join(ROOT, FAMILIES['coop']), '--arch', TINY,
                         '--num-classes', '5', '--batch-size', '2',
                         '--rows', '5']) == 0
    printed = capsys.readouterr().out
    assert 'CoOp train step' in printed and 'Self CPU' in printed
    # the frozen image pass's fused attention is counted
    assert 'aten._native_multi_head_attention' in printed
    assert 'no matmul-like operation' in printed
