"""User-level DP-SGD for BPRMF through Opacus: the accountant's epsilon against Opacus called
directly and against the RDP of the Gaussian mechanism worked out here, per-user clipping
against per-user gradients computed here with plain autograd, the noise scale, noise 0 without
clipping equal to plain training, the contract, and the arguments."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")
pytest.importorskip("opacus")

import torch  # noqa: E402

import recforge  # noqa: E402
from recforge.models import BPRMF  # noqa: E402
from recforge.privacy import DP, DPSGD  # noqa: E402
from recforge.privacy.dpsgd import RDP_ORDERS  # noqa: E402

from test_models_contract import RecommenderContract, random_user_items  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")

FAST = dict(dim=6, epochs=2, batch_size=16, lr=0.05, num_threads=1, device="cpu", progress=False)


class TestPrivateBPRMFContract(RecommenderContract):
    def make_model(self):
        return BPRMF(**FAST, privacy=DPSGD(noise_multiplier=1.0, max_items_per_user=8))


def _problem(R, dp, batch_size=16, negatives=2, epochs=1, seed=0, loss="bpr"):
    from recforge.models.graph._dp_trainer import PrivateBPRProblem
    from recforge.torch.timing import SectionTimer

    return PrivateBPRProblem(sp.csr_matrix(R), dp=dp, dim=4, reg=0.01, batch_size=batch_size, negatives=negatives,
                             loss=loss, epochs=epochs, seed=seed, num_threads=1, timer=SectionTimer())


def _rdp_epsilon_full_batch(sigma, steps, delta):
    """Sampling rate 1: T compositions of the Gaussian mechanism have RDP T a / (2 sigma^2) at
    order a; converted to (eps, delta) as eps = rdp - (log delta + log a)/(a - 1) + log((a - 1)/a)
    (Balle et al. 2020), minimised over the model's grid of orders."""
    orders = np.array(RDP_ORDERS, dtype=float)
    rdp = steps * orders / (2 * sigma ** 2)
    return float(np.min(rdp - (np.log(delta) + np.log(orders)) / (orders - 1) + np.log((orders - 1) / orders)))


def test_accountant_epsilon_matches_opacus_and_the_gaussian_rdp():
    from opacus.accountants import RDPAccountant

    R = random_user_items(40, 30, seed=1)
    n_active = int((np.diff(R.indptr) > 0).sum())
    model = BPRMF(**{**FAST, "epochs": 3}, privacy=DPSGD(noise_multiplier=1.3, delta=1e-5)).fit(R)
    q = 16 / n_active
    assert model.privacy_sample_rate_ == pytest.approx(q)
    assert model.privacy_steps_ == 3 * math.ceil(n_active / 16)
    direct = RDPAccountant()
    for _ in range(model.privacy_steps_):
        direct.step(noise_multiplier=1.3, sample_rate=q)
    assert model.privacy_epsilon_ == pytest.approx(direct.get_epsilon(delta=1e-5, alphas=list(RDP_ORDERS)), rel=1e-12)
    assert model.privacy_epsilon_ <= direct.get_epsilon(delta=1e-5), "the wider grid of orders only tightens"

    full = BPRMF(**{**FAST, "batch_size": 1000, "epochs": 4}, privacy=DPSGD(noise_multiplier=2.0, delta=1e-5)).fit(R)
    assert full.privacy_sample_rate_ == 1.0 and full.privacy_steps_ == 4
    assert full.privacy_epsilon_ == pytest.approx(_rdp_epsilon_full_batch(2.0, 4, 1e-5), rel=1e-9)


def test_target_epsilon_sets_the_smallest_noise_that_meets_it():
    R = random_user_items(40, 30, seed=2)
    model = BPRMF(**FAST, privacy=DPSGD(epsilon=2.0, delta=1e-5)).fit(R)
    assert 1.9 <= model.privacy_epsilon_ <= 2.0
    assert model.privacy_noise_multiplier_ > 0
    tight = BPRMF(**FAST, privacy=DPSGD(epsilon=0.1, delta=1e-6)).fit(R)
    assert 0.09 <= tight.privacy_epsilon_ <= 0.1, "small epsilons are reachable (wide grid of orders)"
    assert tight.privacy_noise_multiplier_ > model.privacy_noise_multiplier_


def _user_gradients(problem, batch):
    """Each row's gradient of its loss (the module docstring's l_u) with respect to the item
    table, by plain autograd on a copy of the weights, one user at a time."""
    users, items, valid = (torch.as_tensor(a) for a in batch)
    W = problem.items._module.weight.detach().clone()
    U = problem.users.weight.detach()
    L, K, reg = problem.max_positives, problem.negatives, problem.reg
    grads = []
    for r in range(users.shape[0]):
        V = W.clone().requires_grad_(True)
        eu, ev = U[users[r]], V[items[r]]
        et, ej = ev[:L], ev[L:].reshape(L, K, -1)
        pos, neg = et @ eu, ej @ eu
        if problem.loss_name == "bpr":
            main = torch.log1p(torch.exp(neg - pos[:, None])).mean(1)
        else:
            main = torch.log1p(torch.exp(-pos)) + torch.log1p(torch.exp(neg)).sum(1)
        item_reg = (et ** 2).sum(1) + (ej ** 2).sum((1, 2))
        loss = ((main + 0.5 * reg * item_reg) * valid[r]).sum() / valid[r].sum() + 0.5 * reg * (eu ** 2).sum()
        loss.backward()
        grads.append(V.grad.clone())
    return torch.stack(grads)


@pytest.mark.parametrize("clip, loss", [(0.05, "bpr"), (1e9, "bpr"), (0.05, "bce")])
def test_each_users_gradient_is_clipped_before_the_noise(clip, loss):
    R = (np.random.default_rng(3).random((30, 20)) < 0.3).astype(np.float32)
    problem = _problem(R, DPSGD(noise_multiplier=0.0, max_grad_norm=clip, max_items_per_user=5), loss=loss)
    optimizer = problem.make_optimizer(0.01)
    batch = problem.user_rows(np.arange(12), np.random.default_rng(0))
    optimizer.zero_grad()
    problem.step(tuple(torch.as_tensor(a) for a in batch)).backward()
    assert optimizer.items.pre_step()
    got = problem.items._module.weight.grad
    G = _user_gradients(problem, batch)
    norms = G.reshape(12, -1).norm(dim=1)
    factors = torch.clamp(clip / norms, max=1.0)
    expected = (factors[:, None, None] * G).sum(0) / problem.expected_batch
    # Opacus divides the bound by (norm + 1e-6): a relative slack of ~1e-6 / (norm / B)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))
    if clip < 1:
        assert (norms > clip).sum() >= 6, "most users are clipped at this bound"
        assert ((factors * norms) <= clip * (1 + 1e-6)).all()


def test_noise_has_standard_deviation_sigma_times_the_bound():
    R = (np.random.default_rng(4).random((30, 400)) < 0.05).astype(np.float32)
    problem = _problem(R, DPSGD(noise_multiplier=1.7, max_grad_norm=0.5, max_items_per_user=5), batch_size=10)
    optimizer = problem.make_optimizer(0.01)
    batch = problem.user_rows(np.arange(10), np.random.default_rng(0))
    optimizer.zero_grad()
    problem.step(tuple(torch.as_tensor(a) for a in batch)).backward()
    optimizer.items.pre_step()
    G = _user_gradients(problem, batch)
    factors = torch.clamp(0.5 / G.reshape(10, -1).norm(dim=1), max=1.0)
    clipped_sum = (factors[:, None, None] * G).sum(0)
    noise = (problem.items._module.weight.grad * problem.expected_batch - clipped_sum).double()
    assert noise.numel() == 400 * 4
    assert noise.std().item() == pytest.approx(1.7 * 0.5, rel=0.06)
    assert abs(noise.mean().item()) < 4 * 0.85 / math.sqrt(noise.numel())


def test_no_noise_and_no_clipping_is_plain_training():
    """DP-SGD with noise 0 and an unreachable bound takes the same steps as Adam on the same loss."""
    from recforge.torch import train

    R = (np.random.default_rng(5).random((25, 15)) < 0.3).astype(np.float32)
    results = []
    for private in (True, False):
        problem = _problem(R, DPSGD(noise_multiplier=0.0, max_grad_norm=1e9), batch_size=8, epochs=3)
        optimizer = (lambda _: problem.make_optimizer(0.05)) if private else (lambda p: torch.optim.Adam(p, lr=0.05))
        config = train.TrainConfig(epochs=3, seed=0, device="cpu", num_threads=1, progress=False)
        train.fit_loop(problem.module, optimizer, problem.epoch_batches, problem.step, config=config)
        results.append((problem.user_factors(), problem.item_factors()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(results[0][1], _problem(R, DPSGD(noise_multiplier=0.0)).item_factors()), "it trained"


def test_users_are_rows_with_their_own_sampled_positives():
    R = sp.csr_matrix((np.random.default_rng(6).random((10, 30)) < 0.5).astype(np.float32))
    problem = _problem(R, DPSGD(noise_multiplier=1.0, max_items_per_user=4), negatives=3)
    users, items, valid = problem.user_rows(np.array([2, 7, 7]), np.random.default_rng(1))
    assert items.shape == (3, 4 * 4) and valid.shape == (3, 4)
    for row, u in enumerate(users):
        m = min(R[u].nnz, 4)
        assert valid[row].sum() == m
        positives = items[row, :4][valid[row] > 0]
        assert len(set(positives)) == m and set(positives) <= set(R[u].indices)
        negatives = items[row, 4:].reshape(4, 3)[valid[row] > 0]
        assert not set(negatives.ravel()) & set(R[u].indices)


def test_private_model_saves_its_accounting(tmp_path):
    R = random_user_items(30, 20, seed=7)
    model = BPRMF(**FAST, privacy=DPSGD(noise_multiplier=1.1, max_grad_norm=0.7, seed=3)).fit(R)
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["params"]["privacy"] == {"epsilon": None, "delta": 1e-6, "noise_multiplier": 1.1, "max_grad_norm": 0.7,
                                        "max_items_per_user": 100, "accountant": "rdp", "seed": 3}
    loaded = recforge.load(tmp_path / "m")
    assert loaded.privacy == model.privacy
    assert loaded.privacy_epsilon_ == pytest.approx(model.privacy_epsilon_)
    assert loaded.privacy_steps_ == model.privacy_steps_
    no_noise = BPRMF(**FAST, privacy=DPSGD(epsilon=math.inf)).fit(R)
    assert no_noise.privacy_noise_multiplier_ == 0 and no_noise.privacy_epsilon_ == math.inf


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="exactly one"):
        DPSGD()
    with pytest.raises(ValueError, match="exactly one"):
        DPSGD(epsilon=1.0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        DPSGD(epsilon=1.0, max_grad_norm=0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        DPSGD(noise_multiplier=-1.0)
    with pytest.raises(ValueError, match="accountant"):
        DPSGD(epsilon=1.0, accountant="moments")
    with pytest.raises(TypeError, match="DPSGD"):
        BPRMF(privacy=DP(epsilon=1.0))
    R = random_user_items(20, 15)
    with pytest.raises(ValueError, match="validation"):
        BPRMF(**FAST, privacy=DPSGD(epsilon=1.0)).fit(R, validation=R)
    with pytest.raises(ValueError, match="early_stopping"):
        BPRMF(**FAST, early_stopping=2, privacy=DPSGD(epsilon=1.0)).fit(R)


def test_missing_opacus_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)
    with pytest.raises(ImportError, match=r"recforge\[privacy\]"):
        BPRMF(**FAST, privacy=DPSGD(epsilon=1.0)).fit(random_user_items(20, 15))


def test_importing_the_models_does_not_import_opacus():
    code = ("import sys, recforge.models, recforge.privacy; from recforge.models import BPRMF; "
            "assert 'opacus' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
