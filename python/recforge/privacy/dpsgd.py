r"""User-level DP-SGD for embedding models (Opacus), and its privacy accounting.

``BPRMF(privacy=DPSGD(epsilon=2.0, delta=1e-6, max_grad_norm=1.0))`` trains BPR matrix
factorisation with DP-SGD (Abadi et al., CCS 2016) through Opacus, with the unit of privacy one
**user** (the whole history), not one interaction:

* **Samples are users.** Each step includes every user independently with probability
  :math:`q = B / n` (Poisson sampling; B = ``batch_size``, n = users with a history). A sampled
  user contributes the loss :math:`\ell_u` of up to ``max_items_per_user`` of its positives
  (each with its negatives), all in *one* per-sample gradient, so Opacus clips the gradient of
  the user's whole contribution: :math:`\bar g_u = g_u \min(1, C / \|g_u\|_2)`,
  C = ``max_grad_norm``.
* **Item vectors are the released, DP part.** Their update is
  :math:`\frac{1}{B}\big(\sum_{u \in \text{batch}} \bar g_u + \mathcal N(0, \sigma^2 C^2 I)\big)`
  (σ = the noise multiplier), passed to Adam (post-processing). Opacus' RDP accountant (Mironov,
  2017; subsampled Gaussian, Mironov, Talwar & Zhang 2019) gives the (ε, δ) of the whole sequence
  of item vectors after T steps, reported as ``privacy_epsilon_``; when ``epsilon`` is given,
  σ is the smallest that keeps ε within it (``opacus.accountants.utils.get_noise_multiplier``).
* **User vectors are local.** :math:`e_u` is updated by plain Adam from user u's own loss only:
  it depends on u's data and on the (DP) item vectors, nothing else. This is *joint*
  differential privacy (Kearns et al., ITCS 2014; the "billboard" model of Hsu et al. 2014):
  everything given to users other than u — their vectors and recommendations — is (ε, δ)-DP
  with respect to u's data, and u's own vector is released only to u. This is the design of
  Jain et al., "Differentially Private Model Personalization" (NeurIPS 2021) and of Chien et al.,
  "Private Alternating Least Squares" (ICML 2021); clipping a user's whole contribution is
  McMahan et al.'s user-level DP (ICLR 2018).

Why not per-triple samples: Opacus' default unit is a row of the batch. With (user, positive,
negative) triples as rows, clipping and ε bound one *interaction*; a user with m interactions
is then only protected at about m·ε (group privacy) — little for anyone with a real history.

What ε does not cover: the saved model also holds every training user's vector (``user_factors_``),
which a deployment must give only to that user (or drop, serving everyone through ``history=``
from the DP item vectors); the number of users n, which fixes q, is treated as public (as Opacus
does); model selection on private data (``validation=``) is refused.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

OPACUS_HINT = 'pip install "recforge[privacy]"'
ACCOUNTANTS = ("rdp", "prv")
#: RDP orders: Opacus' default grid, extended beyond 63 so that small epsilons (a floor of about
#: log(1/delta) / 62 = 0.22 at delta = 1e-6 with the default grid) stay reachable
RDP_ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
                   + [64, 80, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192])


def accountant_options(accountant: str) -> dict[str, Any]:
    """Keyword arguments of the accountant's get_epsilon: the RDP orders for "rdp"."""
    return {"alphas": list(RDP_ORDERS)} if accountant == "rdp" else {}


def require_opacus():
    try:
        import opacus
    except ImportError as exc:
        raise ImportError(f"DP-SGD training needs Opacus: {OPACUS_HINT}") from exc
    return opacus


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DPSGD:
    """User-level DP-SGD settings (module docstring).

    Give either ``epsilon`` (the noise multiplier is then the smallest meeting it for the
    model's steps and sampling rate; ``math.inf`` = no noise, clipping only) or
    ``noise_multiplier`` (ε is then reported). ``delta``: the δ of (ε, δ).
    ``max_grad_norm``: C, the bound on one user's gradient. ``max_items_per_user``: positives a
    sampled user contributes per step (a uniform sample of its history). ``accountant``: "rdp" or
    "prv" (Opacus' accountants). ``seed``: the noise (sampling follows the model's seed).
    """

    epsilon: float | None = None
    delta: float = 1e-6
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    max_items_per_user: int = 100
    accountant: str = "rdp"
    seed: int = 0

    def __post_init__(self):
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of epsilon and noise_multiplier")
        if self.epsilon is not None and not _number(self.epsilon, "epsilon") > 0:
            raise ValueError(f"epsilon must be > 0 (math.inf for no noise), got {self.epsilon!r}")
        if self.noise_multiplier is not None:
            sigma = _number(self.noise_multiplier, "noise_multiplier")
            if not (math.isfinite(sigma) and sigma >= 0):
                raise ValueError(f"noise_multiplier must be finite and >= 0, got {self.noise_multiplier!r}")
        if not 0 < _number(self.delta, "delta") < 1:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta!r}")
        clip = _number(self.max_grad_norm, "max_grad_norm")
        if not (math.isfinite(clip) and clip > 0):
            raise ValueError(f"max_grad_norm must be finite and > 0, got {self.max_grad_norm!r}")
        cap = self.max_items_per_user
        if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1:
            raise ValueError(f"max_items_per_user must be an integer >= 1, got {cap!r}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["epsilon"] is not None and not math.isfinite(d["epsilon"]):
            d["epsilon"] = "inf"
        return d

    @classmethod
    def of(cls, value: Any) -> "DPSGD | None":
        """A DPSGD from a DPSGD, a dict (as saved in a model's JSON) or None."""
        if value is None or isinstance(value, DPSGD):
            return value
        if isinstance(value, dict):
            d = dict(value)
            if d.get("epsilon") is not None:
                d["epsilon"] = float(d["epsilon"])
            return cls(**d)
        raise TypeError(f"privacy must be recforge.privacy.DPSGD(...) or None, got {type(value).__name__}")

    def resolve_noise_multiplier(self, sample_rate: float, steps: int) -> float:
        """σ: the given noise multiplier, or the smallest meeting ``epsilon`` (Opacus' search)."""
        if self.noise_multiplier is not None:
            return float(self.noise_multiplier)
        if not math.isfinite(float(self.epsilon)) or steps == 0:
            return 0.0
        require_opacus()
        from opacus.accountants.utils import get_noise_multiplier

        with warnings.catch_warnings():     # the search's trial sigmas may sit at the edge of the orders
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            return float(get_noise_multiplier(target_epsilon=float(self.epsilon), target_delta=float(self.delta),
                                              sample_rate=float(sample_rate), steps=int(steps),
                                              accountant=self.accountant,
                                              **accountant_options(self.accountant)))


def epsilon_spent(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                  accountant: str = "rdp") -> float:
    """ε after ``steps`` subsampled Gaussian steps, from Opacus' accountant (inf without noise)."""
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    require_opacus()
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=float(delta), **accountant_options(accountant)))
