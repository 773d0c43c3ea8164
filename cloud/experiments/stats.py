"""The A/B decision rule: a mixture sequential probability ratio test (mSPRT) with always-valid p-values.

Operators watch an experiment while it runs and conclude it when the status says so. A fixed-horizon test
looked at that way finds a "winner" in an A/A test far more often than its alpha says; this rule does not.

The rule (Johari, Koomen, Pekelis, Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests",
Operations Research 2022; Robbins 1970). Let ``d`` be the challenger's mean metric minus the champion's and
``V = s_A²/n_A + s_B²/n_B`` its variance (plug-in, normal approximation). Mixing the likelihood ratio of
``θ = d`` against ``θ = 0`` over a prior ``θ ~ N(0, τ²)`` gives

    Λ = sqrt(V / (V + τ²)) · exp(τ² d² / (2 V (V + τ²)))

which is a nonnegative martingale under ``θ = 0``, so by Ville's inequality ``P(Λ ever ≥ 1/α) ≤ α``: the
p-value ``1/Λ`` stays valid however often, and whenever, anyone looks. The difference is significant when
``Λ ≥ 1/α``; inverting the same test gives an always-valid confidence sequence for the difference,

    d ± sqrt(V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V))).

``τ`` is the minimum detectable effect the experiment is planned for: mixing at the size of effect one
cares about is what makes the test quick for such effects (Johari et al. §4). In shadow mode both arms score
the same predictions, so the arms are positively correlated; treating them as independent overstates ``V``
and only makes the rule more cautious. Nothing is tested before ``min_per_arm`` observations per arm, where
the plug-in variance is too rough. ``tests/experiments/test_stats.py`` checks the false-positive rate of
repeated looks on A/A data and the power at the planned size by simulation.

The planned sample size per arm is the smallest n at which one look at the mSPRT boundary has the requested
power for the minimum detectable effect (normal quantiles from scipy); earlier looks only add power, so the
plan errs on the long side. Per-arm intervals (Wilson for a rate, Student t for a mean) are fixed-sample
figures for reading; the decision uses only the always-valid ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from cloud.errors import Invalid

#: below this the plug-in variance is too rough to test with
DEFAULT_MIN_PER_ARM = 50
#: keeps ``V`` positive when every observation in both arms is the same
_VARIANCE_FLOOR = 1e-12


@dataclass(frozen=True)
class ArmSummary:
    n: int
    mean: float
    #: sample variance of one observation (0 with fewer than two)
    variance: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> ArmSummary:
        array = np.asarray(values, dtype=np.float64)
        if array.size == 0:
            return cls(0, math.nan, 0.0)
        return cls(int(array.size), float(array.mean()), float(array.var(ddof=1)) if array.size > 1 else 0.0)


def arm_interval(summary: ArmSummary, binary: bool, alpha: float) -> tuple[float, float] | None:
    """A fixed-sample ``1 - alpha`` interval for one arm's mean: Wilson for a rate, Student t for a mean."""
    if summary.n == 0:
        return None
    if binary:
        interval = stats.binomtest(round(summary.mean * summary.n), summary.n).proportion_ci(1 - alpha, "wilson")
        return float(interval.low), float(interval.high)
    if summary.n < 2:
        return None
    scale = math.sqrt(summary.variance / summary.n)
    if scale == 0:
        return summary.mean, summary.mean
    low, high = stats.t.interval(1 - alpha, summary.n - 1, loc=summary.mean, scale=scale)
    return float(low), float(high)


def log_mixture_likelihood_ratio(difference, variance, tau: float):
    """``ln Λ`` of the normal-mixture SPRT; element-wise, so simulations pass whole arrays of looks."""
    tau2 = tau * tau
    return 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (2 * variance * (variance + tau2))


def confidence_halfwidth(variance, tau: float, alpha: float):
    """Half-width of the always-valid ``1 - alpha`` confidence sequence; also the rejection boundary for ``|d|``."""
    tau2 = tau * tau
    return np.sqrt(variance * (variance + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((variance + tau2) / variance)))


@dataclass(frozen=True)
class SequentialResult:
    #: challenger mean minus champion mean
    difference: float
    #: always-valid confidence sequence for the difference
    low: float
    high: float
    log_likelihood_ratio: float
    #: always valid: min(1, 1/Λ)
    p_value: float
    significant: bool


def sequential_test(
    champion: ArmSummary, challenger: ArmSummary, tau: float, alpha: float, min_per_arm: int = DEFAULT_MIN_PER_ARM
) -> SequentialResult | None:
    """The mSPRT at this look; None until both arms have ``min_per_arm`` observations."""
    if min(champion.n, challenger.n) < max(min_per_arm, 2):
        return None
    difference = challenger.mean - champion.mean
    variance = max(champion.variance / champion.n + challenger.variance / challenger.n, _VARIANCE_FLOOR)
    log_lr = float(log_mixture_likelihood_ratio(difference, variance, tau))
    halfwidth = float(confidence_halfwidth(variance, tau, alpha))
    return SequentialResult(
        difference=difference,
        low=difference - halfwidth,
        high=difference + halfwidth,
        log_likelihood_ratio=log_lr,
        p_value=min(1.0, math.exp(-log_lr)),
        significant=log_lr >= math.log(1 / alpha),
    )


def planned_per_arm(
    baseline_mean: float, baseline_sd: float | None, effect: float, alpha: float, power: float, binary: bool
) -> int:
    """Observations per arm for ``power`` to detect an improvement of ``effect`` (τ = ``effect``), at least the
    minimum sample the rule needs.

    ``baseline_sd`` is the spread of one observation of a continuous metric (ignored for a rate).
    """
    if effect <= 0:
        raise Invalid("the minimum detectable effect must be positive")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise Invalid("alpha and power must lie strictly between 0 and 1")
    if binary:
        improved = min(max(baseline_mean - effect, 0.0), 1.0)
        spread = baseline_mean * (1 - baseline_mean) + improved * (1 - improved)
    else:
        if not baseline_sd or baseline_sd <= 0:
            raise Invalid("a continuous metric needs a positive baseline standard deviation")
        spread = 2 * baseline_sd**2
    spread = max(spread, _VARIANCE_FLOOR)

    def shortfall(n: float) -> float:
        variance = spread / n
        boundary = confidence_halfwidth(variance, effect, alpha)
        sd = math.sqrt(variance)
        reached = stats.norm.cdf((effect - boundary) / sd) + stats.norm.cdf((-effect - boundary) / sd)
        return float(reached) - power

    lower, upper = float(DEFAULT_MIN_PER_ARM), 1e9
    if shortfall(lower) >= 0:  # the rule looks at nothing smaller
        return DEFAULT_MIN_PER_ARM
    if shortfall(upper) < 0:
        raise Invalid(f"an effect of {effect} cannot be detected with any practical sample size")
    return math.ceil(optimize.brentq(shortfall, lower, upper, xtol=0.5))
