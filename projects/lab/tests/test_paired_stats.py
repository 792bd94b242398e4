"""The yardstick's paired statistics (projects/lab/mmpl_lab/paired.py) on
hand-written units with known answers: the t interval, its degrees of
freedom, pairing, stratification by task, the HM linearisation, the
minimum detectable effect."""
import math
import statistics

import pytest

from mmpl.evaluation.harmonic_mean import harmonic_mean
from mmpl_lab import paired

# Student t quantiles (standard tables)
T_TABLE = [(0.975, 1, 12.706205), (0.975, 2, 4.302653), (0.975, 4, 2.776445),
           (0.975, 8, 2.306004), (0.975, 30, 2.042272), (0.80, 2, 1.060660),
           (0.80, 8, 0.888889), (0.80, 30, 0.853767), (0.025, 8, -2.306004)]


@pytest.mark.parametrize('p,df,t', T_TABLE)
def test_t_quantile_matches_the_tables(p, df, t):
    assert paired.t_quantile(p, df) == pytest.approx(t, abs=2e-6)


def test_t_quantile_real_df_and_normal_limit():
    for df in (1.3, 2.5, 7.77, 150.0):
        for p in (0.6, 0.8, 0.975):
            t = paired.t_quantile(p, df)
            assert paired.t_cdf(t, df) == pytest.approx(p, abs=1e-9)
    # between its integer neighbours, and the normal quantile at infinity
    assert (paired.t_quantile(0.975, 3) < paired.t_quantile(0.975, 2.5) <
            paired.t_quantile(0.975, 2))
    assert paired.t_quantile(0.975, math.inf) == pytest.approx(1.959964,
                                                              abs=1e-6)


def _units(values):
    """{(task, seed): (base, new)} from {task: [(base, new), ...]}."""
    return {(task, seed): v for task, rows in values.items()
            for seed, v in enumerate(rows, 1)}


def _base_only(values):
    """Units whose new accuracy is constant: comparisons on 'base'."""
    return _units({t: [(b, 50.0) for b in rows] for t, rows in values.items()})


def test_known_interval_and_mde_with_few_seeds_is_not_significant():
    """One task, three seeds, differences 1, 2, 3: diff 2, se 1/sqrt(3),
    df 2, t(0.975, 2) = 4.303: [-0.484, 4.484]. A 2-se rule would call it
    significant (2 / 0.577 = 3.5 se)."""
    a = _base_only({'t': [51.0, 62.0, 43.0]})
    b = _base_only({'t': [50.0, 60.0, 40.0]})
    d = paired.paired_comparison(a, b, 'base')
    se = 1 / math.sqrt(3)
    assert d['diff'] == pytest.approx(2.0)
    assert d['se'] == pytest.approx(se)
    assert d['df'] == pytest.approx(2.0)
    assert d['ci'] == pytest.approx([2 - 4.302653 * se, 2 + 4.302653 * se],
                                    abs=1e-5)
    assert d['mde'] == pytest.approx((4.302653 + 1.060660) * se, abs=1e-5)
    assert d['n_pairs'] == 3 and d['n_tasks'] == 1
    assert not d['significant']
    assert d['diff'] > 2 * d['se']  # what the old rule would have passed


def test_null_effect_with_large_noise_is_not_significant():
    """Four tasks, five seeds, per-unit differences of +-6 points that
    average to zero within each task: no effect, a wide interval."""
    noise = [6.0, -6.0, 4.0, -4.0, 0.0]
    b = {t: [40.0 + 10 * k for k in range(5)] for t in 'wxyz'}
    a = {t: [v + e * (1 if t in 'wy' else -1) for v, e in zip(b[t], noise)]
         for t in 'wxyz'}
    d = paired.paired_comparison(_base_only(a), _base_only(b), 'base')
    assert d['diff'] == pytest.approx(0.0, abs=1e-12)
    assert d['ci'][0] < 0 < d['ci'][1] and not d['significant']
    assert d['mde'] > 3  # the noise is large: only a large effect shows


def test_fixed_effect_is_found_by_pairing_not_by_the_spread():
    """A is B + 1 (+- 0.1) on every unit, while B varies by 30 points from
    seed to seed: the paired interval is narrow around +1; the two
    methods' spreads overlap entirely (an unpaired test finds nothing)."""
    wobble = [0.1, -0.1, 0.05, -0.05, 0.0]
    b = {t: [35.0, 65.0, 50.0, 42.0, 58.0] for t in ('t1', 't2')}
    a = {t: [v + 1 + w for v, w in zip(b[t], wobble)] for t in b}
    d = paired.paired_comparison(_base_only(a), _base_only(b), 'base')
    assert d['diff'] == pytest.approx(1.0)
    assert d['significant'] and 0.8 < d['ci'][0] < 1 < d['ci'][1] < 1.2
    assert d['mde'] < 0.5
    # the unpaired view of the same numbers: the spread swamps the effect
    flat_a = [v for rows in a.values() for v in rows]
    flat_b = [v for rows in b.values() for v in rows]
    unpaired_se = math.sqrt(statistics.variance(flat_a) / len(flat_a) +
                            statistics.variance(flat_b) / len(flat_b))
    assert 1.0 < 2 * unpaired_se


def test_tasks_are_strata_their_own_effects_do_not_widen_the_interval():
    """The effect is +0.5 on one task and +2.5 on the other, each +- 0.1
    over seeds: the average effect (+1.5) is known to about 0.1; pooling
    the units across tasks would count the tasks' difference as noise."""
    wobble = [0.1, -0.1, 0.0, 0.05, -0.05]
    b = {'t1': [50.0] * 5, 't2': [70.0] * 5}
    a = {'t1': [50.5 + w for w in wobble], 't2': [72.5 - w for w in wobble]}
    d = paired.paired_comparison(_base_only(a), _base_only(b), 'base')
    assert d['diff'] == pytest.approx(1.5)
    assert d['ci'][1] - d['ci'][0] < 0.3 and d['significant']
    # the tasks' variances are equal: Welch-Satterthwaite = pooled, 2 * 4
    assert d['df'] == pytest.approx(8.0)
    pooled = [x - y for t in a for x, y in zip(a[t], b[t])]
    assert statistics.stdev(pooled) / math.sqrt(10) > 0.3  # unstratified


def test_satterthwaite_df_follows_the_noisy_task():
    """One task without spread, one with: the df are the noisy task's
    (n - 1 = 3), not the pooled 6."""
    b = {'t1': [50.0] * 4, 't2': [50.0] * 4}
    a = {'t1': [51.0] * 4, 't2': [49.0, 53.0, 50.0, 52.0]}
    d = paired.paired_comparison(_base_only(a), _base_only(b), 'base')
    assert d['df'] == pytest.approx(3.0)
    spread = statistics.variance([-1.0, 3.0, 0.0, 2.0]) / 4 / 4
    assert d['se'] == pytest.approx(math.sqrt(spread))


def test_hm_difference_is_the_difference_of_hms_of_the_averages():
    """The per-unit HM values average exactly to HM(mean base, mean new)
    of each method; a gain in new accuracy at equal base raises HM."""
    a = _units({'t1': [(80.0, 60.0), (84.0, 56.0), (82.0, 61.0)],
                't2': [(70.0, 40.0), (72.0, 45.0), (69.0, 41.0)]})
    b = _units({'t1': [(82.0, 50.0), (83.0, 52.0), (81.0, 49.0)],
                't2': [(71.0, 35.0), (70.0, 38.0), (72.0, 36.0)]})
    d = paired.paired_comparison(a, b, 'hm')
    def hm_of_means(u):  # noqa: E306
        base = statistics.fmean(v[0] for v in u.values())
        new = statistics.fmean(v[1] for v in u.values())
        return harmonic_mean(base, new)
    assert d['diff'] == pytest.approx(hm_of_means(a) - hm_of_means(b),
                                      abs=1e-9)
    assert d['diff'] > 0 and d['significant']
    s = paired.scores(a, sorted(a))
    assert s['hm'] == pytest.approx(hm_of_means(a))
    # the spread is the delta method's: on one task whose runs differ by
    # little, it is the spread of the runs' own HM differences
    wobble = [(0.2, -0.1), (-0.1, 0.3), (0.0, -0.2), (-0.1, 0.0)]
    a = _units({'t': [(80 + x, 60 + y) for x, y in wobble]})
    b = _units({'t': [(82 - y, 50 + x) for x, y in wobble]})
    exact = [harmonic_mean(*a[k]) - harmonic_mean(*b[k]) for k in sorted(a)]
    d = paired.paired_comparison(a, b, 'hm')
    assert d['se'] == pytest.approx(
        statistics.stdev(exact) / math.sqrt(4), rel=0.02)


def test_only_shared_units_pair_and_one_seed_gives_no_interval():
    a = _base_only({'t1': [60.0, 61.0, 62.0], 't2': [50.0]})
    b = _base_only({'t1': [55.0, 56.0], 't2': [45.0, 44.0]})
    d = paired.paired_comparison(a, b, 'base')
    assert d['n_pairs'] == 3 and d['n_tasks'] == 2  # (t1, 3), (t2, 2) alone
    assert d['diff'] == pytest.approx(5.0)
    assert math.isnan(d['se']) and math.isnan(d['ci'][0])
    assert not d['significant']
    empty = paired.paired_comparison(a, {}, 'base')
    assert empty['n_pairs'] == 0 and math.isnan(empty['diff'])
    with pytest.raises(ValueError, match='measure'):
        paired.paired_comparison(a, b, 'top5')
