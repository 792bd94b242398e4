"""Paired comparisons of two methods on the yardstick's (task, seed) units.

The yardstick's tasks are a fixed set (as the 11 datasets of the real
benchmark are); the seeds are a sample. Two methods run on the same task
with the same seed see the same 16 shots, so each (task, seed) is a pair.
A method's score is the average over the tasks of its mean over the seeds
(base, new), and its HM is the harmonic mean of those two averages, as the
papers' "average" rows are.

**The interval.** The difference of two methods' scores is the mean of one
value per unit, ``u[t, s]``:

* base or new: the difference of the two accuracies;
* HM: ``H`` is homogeneous of degree 1, so ``H(B, N) = w_B B + w_N N`` with
  the gradient ``w = (2N^2, 2B^2) / (B + N)^2`` taken at the method's own
  averages (Euler's theorem): ``u[t, s] = w(A) . (B_A, N_A)[t, s] -
  w(R) . (B_R, N_R)[t, s]`` averages exactly to ``HM(A) - HM(R)``; its
  spread is the delta method's (first order in the per-unit deviations).

Tasks are strata: a task's own level and its own effect are fixed, only the
seeds vary. The variance of the difference is ``sum_t s_t^2 / n_t / T^2``
(``s_t`` the sample std of ``u`` over task t's seeds), and the interval is a
two-sided 95 % Student t interval with Welch-Satterthwaite degrees of
freedom, which allows tasks to differ in their noise (a task where a method
over-fits is noisier than one where it does not). Not a bootstrap: with 5
seeds per task a bootstrap's resamples take a handful of values and its
intervals are too narrow (it estimates the variance with divisor n, not
n - 1, and has no small-sample quantile). Not a t over seeds alone (units =
seeds, tasks averaged first): the same variance with T times fewer degrees
of freedom.

**The minimum detectable effect** at 80 % power, two-sided 5 % level:
``(t(0.975, df) + t(0.80, df)) * se``, the usual normal-shift
approximation with the run's own standard error (a true difference of that
size is found significant four times in five).

*Significant* means the interval excludes 0; a published ordering *holds*
when the lower end is above 0 in the published direction.
"""
import math
import statistics
from typing import Dict, Mapping, Sequence, Tuple

from mmpl.evaluation.harmonic_mean import harmonic_mean

#: (task, seed) -> (base, new) accuracies (%) of one method
Units = Mapping[Tuple[str, int], Tuple[float, float]]
LEVEL = 0.95  # two-sided confidence of the intervals
POWER = 0.80  # power of the minimum detectable effect


# ------------------------------------------------------ Student's t
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz;
    Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) +
                     a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, real) degrees of
    freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`;
    ``df = inf`` gives the normal quantile)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f'p must be in (0, 1), got {p}')
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)


# ------------------------------------------------- the paired difference
def scores(units: Units, keys: Sequence[Tuple[str, int]]) -> Dict[str, float]:
    """{'base', 'new', 'hm'} of one method on ``keys``: base and new are
    the mean over the tasks of the mean over each task's seeds; hm is the
    HM of those two."""
    by_task: Dict[str, list] = {}
    for key in keys:
        by_task.setdefault(key[0], []).append(units[key])
    base = statistics.fmean(statistics.fmean(b for b, _ in v)
                            for v in by_task.values())
    new = statistics.fmean(statistics.fmean(n for _, n in v)
                           for v in by_task.values())
    return dict(base=base, new=new, hm=harmonic_mean(base, new))


def _unit_values(units: Units, keys, measure: str) -> Dict[tuple, float]:
    """One method's value per unit whose task-stratified mean is its score
    on ``measure`` (for 'hm': the linearisation at its own averages)."""
    if measure == 'base':
        return {k: units[k][0] for k in keys}
    if measure == 'new':
        return {k: units[k][1] for k in keys}
    if measure != 'hm':
        raise ValueError(f'measure must be base, new or hm, got {measure!r}')
    s = scores(units, keys)
    total = (s['base'] + s['new'])**2
    w_base, w_new = 2 * s['new']**2 / total, 2 * s['base']**2 / total
    return {k: w_base * units[k][0] + w_new * units[k][1] for k in keys}


def paired_comparison(a: Units, b: Units, measure: str) -> dict:
    """``a - b`` on ``measure`` ('base', 'new' or 'hm') over the units both
    have (see the module doc).

    Returns diff, ci [lo, hi], se, df, mde, n_pairs, n_tasks and
    significant (the interval excludes 0). Every task needs two seeds for
    an interval; otherwise se, ci and mde are nan and nothing is
    significant.
    """
    keys = sorted(set(a) & set(b))
    out = dict(diff=math.nan, ci=[math.nan, math.nan], se=math.nan,
               df=math.nan, mde=math.nan, n_pairs=len(keys), n_tasks=0,
               significant=False)
    if not keys:
        return out
    ua, ub = _unit_values(a, keys, measure), _unit_values(b, keys, measure)
    by_task: Dict[str, list] = {}
    for k in keys:
        by_task.setdefault(k[0], []).append(ua[k] - ub[k])
    n_tasks = len(by_task)
    diff = statistics.fmean(statistics.fmean(v) for v in by_task.values())
    out.update(diff=diff, n_tasks=n_tasks)
    if any(len(v) < 2 for v in by_task.values()):
        return out
    # each task's share of the variance of the mean, and its df
    parts = [(statistics.variance(v) / len(v) / n_tasks**2, len(v) - 1)
             for v in by_task.values()]
    var = sum(p for p, _ in parts)
    se = math.sqrt(var)
    if var == 0.0:  # no spread at all: the difference is exact
        df, half, mde = math.inf, 0.0, 0.0
    else:
        df = var**2 / sum(p**2 / k for p, k in parts if p > 0)
        t_level = t_quantile(0.5 + LEVEL / 2, df)
        half = t_level * se
        mde = (t_level + t_quantile(POWER, df)) * se
    lo, hi = diff - half, diff + half
    out.update(ci=[lo, hi], se=se, df=df, mde=mde,
               significant=bool(lo > 0 or hi < 0))
    return out
