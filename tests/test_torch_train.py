"""recforge.torch.train.fit_loop: resume identity, early stopping, timing, precision, devices, errors."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from recforge.torch import losses, train  # noqa: E402
from recforge.torch.samplers import UniformNegativeSampler  # noqa: E402

N_USERS, N_ITEMS = 40, 30


def interactions():
    return sp.random(N_USERS, N_ITEMS, density=0.15, format="csr", random_state=4, dtype=np.float32)


class TinyMF(torch.nn.Module):
    """Matrix factorisation with dropout, so that torch's RNG matters to the result."""

    def __init__(self, dim=6):
        super().__init__()
        self.users = torch.nn.Embedding(N_USERS, dim)
        self.items = torch.nn.Embedding(N_ITEMS, dim)
        self.dropout = torch.nn.Dropout(0.3)

    def score(self, u, i):
        return (self.dropout(self.users(u)) * self.items(i)).sum(-1)


def bpr_task(X, batch_size=32):
    coo = X.tocoo()
    sampler = UniformNegativeSampler(X)

    def epoch_batches(epoch, rng):
        order = rng.permutation(coo.nnz)
        for start in range(0, coo.nnz, batch_size):
            b = order[start:start + batch_size]
            users = coo.row[b].astype(np.int64)
            yield users, coo.col[b].astype(np.int64), sampler.sample(users, 1, rng=rng)[:, 0]

    return epoch_batches


def run(config, *, init_seed=0, validate=True, timer=None):
    torch.manual_seed(init_seed)
    model = TinyMF()
    X = interactions()

    def step(batch):
        u, i, j = batch
        return losses.bpr(model.score(u, i), model.score(u, j))

    def score():  # a deterministic function of the weights, like a recforge.evaluate closure
        return float(-(model.users.weight @ model.items.weight.T).square().mean())

    history = train.fit_loop(model, lambda p: torch.optim.Adam(p, lr=0.05), bpr_task(X), step,
                             validate=score if validate else None, config=config, timer=timer)
    return model, history


def config(**settings):
    """One thread (the test machine is shared) and no progress bar."""
    return train.TrainConfig(**{"num_threads": 1, "progress": False, **settings})


def weights_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_continues_identically(tmp_path):
    straight, h_straight = run(config(epochs=4))
    run(config(epochs=2, checkpoint_dir=tmp_path))
    resumed, h_resumed = run(config(epochs=4, checkpoint_dir=tmp_path), init_seed=99)
    assert h_resumed.resumed_at == 2
    assert weights_equal(straight, resumed)
    assert h_straight.losses == h_resumed.losses and h_straight.metrics == h_resumed.metrics
    assert h_straight.best_epoch == h_resumed.best_epoch
    # and the checkpoint is a safetensors file with the loop's JSON in its metadata, not a pickle
    from safetensors import safe_open

    with safe_open(str(tmp_path / "checkpoint.safetensors"), framework="pt") as f:
        assert "recforge_checkpoint" in f.metadata()
        assert any(k.startswith("optimizer.") for k in f.keys())


def test_resume_takes_the_given_learning_rate(tmp_path):
    # Adam at lr 0 moves nothing (its step is lr * m / (sqrt(v) + eps)), so a run resumed at lr 0
    # keeps the checkpoint's weights exactly -- and would not if the saved lr 0.05 came back.
    run(config(epochs=2, checkpoint_dir=tmp_path))
    at_two, _ = run(config(epochs=2, checkpoint_dir=tmp_path), init_seed=7)
    torch.manual_seed(0)
    model = TinyMF()
    X = interactions()

    def step(batch):
        u, i, j = batch
        return losses.bpr(model.score(u, i), model.score(u, j))

    history = train.fit_loop(model, lambda p: torch.optim.Adam(p, lr=0.0), bpr_task(X), step,
                             config=config(epochs=3, checkpoint_dir=tmp_path))
    assert history.resumed_at == 2 and len(history.losses) == 3
    assert weights_equal(model, at_two)


def test_without_validation_the_last_weights_stay_and_seed_matters():
    a, ha = run(config(epochs=2), validate=False)
    b, _ = run(config(epochs=2), validate=False)
    c, _ = run(config(epochs=2, seed=1), validate=False)
    assert weights_equal(a, b) and not weights_equal(a, c)
    assert ha.best_epoch is None and ha.metrics == [None, None]


def test_early_stopping_restores_the_best_weights():
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.9, 0.9])
    snapshots = []
    model = TinyMF()
    X = interactions()

    def validate():
        assert not model.training and not torch.is_grad_enabled()
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    def step(batch):
        u, i, j = batch
        return losses.bpr(model.score(u, i), model.score(u, j))

    history = train.fit_loop(model, torch.optim.SGD(model.parameters(), lr=0.1), bpr_task(X), step, validate=validate,
                             config=config(epochs=6, patience=2))
    assert history.stopped_early and len(history.records) == 4
    assert history.best_epoch == 1 and history.best_metric == 0.3
    assert history.metrics == [0.1, 0.3, 0.2, 0.25]
    assert all(torch.equal(v, snapshots[1][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, snapshots[3][k]) for k, v in model.state_dict().items())


def test_lower_is_better_and_validate_every():
    scores = iter([5.0, 4.0, 4.5])
    model = TinyMF()

    def step(batch):
        u, i, j = batch
        return losses.bpr(model.score(u, i), model.score(u, j))

    history = train.fit_loop(model, torch.optim.SGD(model.parameters(), lr=0.1), bpr_task(interactions()), step,
                             validate=lambda: next(scores),
                             config=config(epochs=5, validate_every=2, higher_is_better=False))
    assert history.metrics == [None, 5.0, None, 4.0, 4.5]  # every 2nd epoch, and the last
    assert history.best_epoch == 3


def test_timing_sections_and_history():
    timer = train.SectionTimer()
    model = TinyMF()

    def step(batch):
        u, i, j = batch
        with timer.section("scores"):
            s = model.score(u, torch.stack([i, j]))
        return losses.bpr(s[0], s[1])

    history = train.fit_loop(model, lambda p: torch.optim.Adam(p), bpr_task(interactions()), step,
                             validate=lambda: 0.0, config=config(epochs=2), timer=timer)
    for record in history.records:
        assert {"data", "forward", "backward", "optimizer", "validate", "scores"} <= set(record.sections)
        assert record.sections["scores"] <= record.sections["forward"]
        assert sum(v for k, v in record.sections.items() if k != "scores") <= record.seconds
    assert train.TrainHistory.from_dict(history.to_dict()) == history


def test_cpu_bfloat16_autocast_and_thread_setting_restored():
    seen = []
    model = TinyMF()
    before = torch.get_num_threads()
    threads = 2 if before == 1 else 1

    def step(batch):
        u, i, j = batch
        seen.append((torch.get_num_threads(), (model.users(u) @ model.items(i).T).dtype))
        return losses.bpr(model.score(u, i), model.score(u, j))

    history = train.fit_loop(model, lambda p: torch.optim.Adam(p), bpr_task(interactions()), step,
                             config=config(epochs=1, amp=True, num_threads=threads))
    assert seen[0] == (threads, torch.bfloat16)
    assert np.isfinite(history.losses[0])
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="bfloat16' only"):
        train.fit_loop(model, lambda p: torch.optim.Adam(p), bpr_task(interactions()), step,
                       config=config(epochs=1, amp=True, amp_dtype="float16", device="cpu"))


def test_batches_reach_step_as_tensors_on_the_device():
    kinds = []
    model = torch.nn.Linear(2, 1)

    def batches(epoch, rng):
        yield {"x": rng.random((4, 2)).astype(np.float32), "pair": (torch.ones(4, 1), 3)}

    def step(batch):
        kinds.append((type(batch["x"]), batch["x"].device.type, type(batch["pair"]), batch["pair"][1]))
        return (model(batch["x"]) - batch["pair"][0]).square().mean()

    train.fit_loop(model, lambda p: torch.optim.SGD(p, lr=0.1), batches, step,
                   config=config(epochs=1, device="cpu"))
    assert kinds == [(torch.Tensor, "cpu", tuple, 3)]


def test_resolve_device():
    assert train.resolve_device("cpu").type == "cpu"
    assert train.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        train.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            train.resolve_device("cuda")


def test_bad_use_raises_clear_errors():
    model = torch.nn.Linear(1, 1)
    opt = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    one_batch = lambda epoch, rng: [torch.ones(2, 1)]  # noqa: E731
    cfg = config(epochs=1)
    with pytest.raises(TypeError, match="scalar loss tensor"):
        train.fit_loop(model, opt, one_batch, lambda b: model(b), config=cfg)
    with pytest.raises(ValueError, match="no batch in epoch 0"):
        train.fit_loop(model, opt, lambda e, r: [], lambda b: model(b).sum(), config=cfg)
    with pytest.raises(ValueError, match="patience needs a validate"):
        train.fit_loop(model, opt, one_batch, lambda b: model(b).sum(),
                       config=config(epochs=1, patience=2))
    with pytest.raises(TypeError, match="optimizer must be"):
        train.fit_loop(model, 0.1, one_batch, lambda b: model(b).sum(), config=cfg)
    with pytest.raises(ValueError, match="validate\\(\\) returned nan"):
        train.fit_loop(model, opt, one_batch, lambda b: model(b).sum(), validate=lambda: float("nan"), config=cfg)
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        train.TrainConfig(epochs=-1).check()
    with pytest.raises(FloatingPointError, match="epoch 0"):
        train.fit_loop(model, opt, one_batch, lambda b: model(b).sum() * float("nan"), config=cfg)


def test_not_a_recforge_checkpoint(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "checkpoint.safetensors"))
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="not a recforge training checkpoint"):
        train.fit_loop(model, lambda p: torch.optim.SGD(p, lr=0.1), lambda e, r: [torch.ones(2, 1)],
                       lambda b: model(b).sum(),
                       config=config(epochs=1, checkpoint_dir=tmp_path))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_float16_amp_and_resume(tmp_path):
    cfg = dict(device="cuda", amp=True, sync_timing=True)
    straight, h = run(config(epochs=4, **cfg))
    assert straight.users.weight.device.type == "cuda" and all(np.isfinite(h.losses))
    run(config(epochs=2, checkpoint_dir=tmp_path, **cfg))
    resumed, _ = run(config(epochs=4, checkpoint_dir=tmp_path, **cfg), init_seed=99)
    assert weights_equal(straight, resumed)
