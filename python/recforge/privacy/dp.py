r"""Privacy parameters and the analytic Gaussian mechanism.

The Gaussian mechanism adds :math:`\mathcal N(0, \sigma^2)` to every released value of a
statistic whose L2 sensitivity (the most one user can move the whole vector, in Euclidean norm)
is :math:`\Delta`. It is :math:`(\varepsilon, \delta)`-DP iff (Balle & Wang, ICML 2018, Thm. 8)

.. math:: \Phi\!\left(\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\right)
          - e^{\varepsilon}\, \Phi\!\left(-\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\right)
          \le \delta,

and :func:`gaussian_sigma` returns the smallest such :math:`\sigma` (bisection; valid for every
:math:`\varepsilon > 0`, unlike the classic :math:`\sqrt{2\ln(1.25/\delta)}\,\Delta/\varepsilon`, proven
for :math:`\varepsilon < 1` only). :math:`\varepsilon = \infty` means no noise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DP:
    """User-level (epsilon, delta)-DP for a model's released statistics.

    ``max_items_per_user``: each user's history is cut to at most this many items (a seeded
    uniform sample) before its contribution is bounded — it limits the cost of heavy users, not
    the sensitivity (the weights bound that). ``threshold``: noisy pair statistics below
    ``threshold * sigma`` are dropped as indistinguishable from noise (post-processing: no
    privacy cost). ``seed``: the sample and the noise.
    """

    epsilon: float
    delta: float = 1e-6
    max_items_per_user: int | None = 200
    threshold: float = 3.0
    seed: int = 0

    def __post_init__(self):
        eps = float(self.epsilon)
        if not (eps > 0):
            raise ValueError(f"epsilon must be > 0 (math.inf for no privacy), got {self.epsilon!r}")
        if not (0 < float(self.delta) < 1):
            raise ValueError(f"delta must lie in (0, 1), got {self.delta!r}")
        if not (float(self.threshold) >= 0):
            raise ValueError(f"threshold must be >= 0, got {self.threshold!r}")
        cap = self.max_items_per_user
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1):
            raise ValueError(f"max_items_per_user must be an integer >= 1 or None, got {cap!r}")

    @property
    def private(self) -> bool:
        """False for epsilon = inf (the statistics are released exactly)."""
        return math.isfinite(float(self.epsilon))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["epsilon"] = "inf" if not self.private else float(self.epsilon)
        return d

    @classmethod
    def of(cls, value: Any) -> "DP | None":
        """A DP from a DP, a dict (as saved in a model's JSON) or None."""
        if value is None or isinstance(value, DP):
            return value
        if isinstance(value, dict):
            d = dict(value)
            d["epsilon"] = float(d.get("epsilon", "nan"))
            return cls(**d)
        raise TypeError(f"privacy must be recforge.privacy.DP(...) or None, got {type(value).__name__}")


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """The smallest sigma making the Gaussian mechanism (epsilon, delta)-DP (module docstring)."""
    from scipy.special import log_ndtr, ndtr

    if not math.isfinite(epsilon):
        return 0.0
    if epsilon <= 0 or not 0 < delta < 1 or sensitivity <= 0:
        raise ValueError("need epsilon > 0, 0 < delta < 1 and sensitivity > 0")

    def leak(sigma: float) -> float:
        a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
        return float(ndtr(a - b) - math.exp(min(epsilon + log_ndtr(-a - b), 700.0)))

    lo, hi = 1e-6 * sensitivity, sensitivity
    while leak(hi) > delta:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if leak(mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi
