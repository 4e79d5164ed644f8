"""LightGCN and BPRMF: the gradient against torch autograd through torch.sparse.mm (float64),
the batch sampler, reproducibility, a planted-structure graph, the history fold-in against a dense
numpy propagation, save/load, checkpoint resume, and the contract mixin.

References are independent of the code under test: torch.sparse.mm / dense numpy matrix powers
for the propagation, hand-written BPR for the loss, scipy's chi-square for uniformity.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
from scipy.stats import chisquare  # noqa: E402

import recforge  # noqa: E402
from recforge.kernels import normalize_adjacency  # noqa: E402
from recforge.models import BPRMF, LightGCN  # noqa: E402
from recforge.models.graph._propagation import GraphOperator, propagate_rows  # noqa: E402
from recforge.models.graph._trainer import BPRGraphProblem  # noqa: E402
from recforge.torch.timing import SectionTimer  # noqa: E402
from test_models_contract import RecommenderContract, random_user_items  # noqa: E402

FAST = dict(dim=8, epochs=3, batch_size=64, num_threads=1, device="cpu")


def small_graph(n_users=13, n_items=9, density=0.35, seed=1) -> sp.csr_matrix:
    R = sp.random(n_users, n_items, density=density, format="csr", random_state=seed, dtype=np.float64)
    R.data[:] = 1.0
    R = R.tolil()
    for u in range(n_users):  # every user and item has an interaction
        R[u, u % n_items] = 1.0
    return R.tocsr()


def reference_final(A: sp.csr_matrix, E, weights):
    """sum_l w_l A^l E through torch.sparse.mm (autograd's own backward)."""
    coo = A.tocoo()
    At = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, size=A.shape, dtype=torch.float64)
    out, X = weights[0] * E, E
    for w in weights[1:]:
        X = torch.sparse.mm(At, X)
        out = out + w * X
    return out


# --------------------------------------------------------------------------- propagation and gradient
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_row_propagation_and_its_gradient_equal_torch_sparse_mm(layers):
    R = small_graph()
    A = normalize_adjacency(R)
    weights = [1.0 / (layers + 1)] * (layers + 1)
    op = GraphOperator(A, weights, 1, np.float64)
    gen = torch.Generator().manual_seed(0)
    E0 = torch.randn(A.shape[0], 5, generator=gen, dtype=torch.float64)
    rows = torch.tensor([0, 3, 4, 14, 20], dtype=torch.int64)
    W = torch.randn(rows.numel(), 5, generator=gen, dtype=torch.float64)

    E = E0.clone().requires_grad_()
    out = propagate_rows(op, E, rows)
    (out * W).sum().backward()
    E_ref = E0.clone().requires_grad_()
    ref = reference_final(A, E_ref, weights)[rows]
    (ref * W).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(E.grad.numpy(), E_ref.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("negatives,loss", [(1, "bpr"), (3, "bpr"), (2, "bce")])
def test_model_loss_gradient_equals_autograd_through_sparse_mm(negatives, loss):
    R = small_graph()
    problem = BPRGraphProblem(R, dim=6, layers=3, reg=0.3, batch_size=16, negatives=negatives, loss=loss,
                              sampling="user", seed=0, num_threads=1, device=torch.device("cpu"),
                              timer=SectionTimer(), dtype=torch.float64)
    rows, inverse, nodes = next(iter(problem.epoch_batches(0, np.random.default_rng(3))))
    batch = tuple(torch.from_numpy(a) for a in (rows, inverse, nodes))
    problem.step(batch).backward()
    got = problem.embedding.grad.numpy().copy()

    E = problem.embedding.detach().clone().requires_grad_()
    F = reference_final(normalize_adjacency(R), E, [0.25] * 4)
    b = inverse.size // (2 + negatives)
    u, i, j = nodes[:b], nodes[b:2 * b], nodes[2 * b:].reshape(b, negatives)
    pos = (F[u] * F[i]).sum(1)
    neg = (F[u][:, None, :] * F[j]).sum(2)
    if loss == "bpr":
        main = -torch.log(torch.sigmoid(pos[:, None] - neg)).mean()
    else:
        main = (-torch.log(torch.sigmoid(pos)) - torch.log(torch.sigmoid(-neg)).sum(1)).mean()
    reg = 0.3 * 0.5 * (E[u].pow(2).sum() + E[i].pow(2).sum() + E[j].pow(2).sum()) / b
    (main + reg).backward()
    np.testing.assert_allclose(got, E.grad.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- sampling
def test_user_sampling_is_uniform_over_users_and_positives_are_positives():
    R = small_graph(n_users=12, n_items=30, density=0.3)
    problem = BPRGraphProblem(R, dim=2, layers=1, reg=0.0, batch_size=500, negatives=2, loss="bpr",
                              sampling="user", seed=0, num_threads=1, device=torch.device("cpu"), timer=SectionTimer())
    rng = np.random.default_rng(0)
    users_seen = []
    dense = R.toarray() > 0
    for _ in range(20):
        for rows, inverse, nodes in problem.epoch_batches(0, rng):
            b = inverse.size // 4
            u, i, j = nodes[:b], nodes[b:2 * b] - 12, nodes[2 * b:].reshape(b, 2) - 12
            assert dense[u, i].all(), "a positive is one of the user's items"
            assert not dense[u[:, None], j].any(), "a negative is never a positive"
            np.testing.assert_array_equal(rows[inverse], nodes)
            users_seen.append(u)
    counts = np.bincount(np.concatenate(users_seen), minlength=12)
    assert chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("n_users,batch_size", [(40, 16), (12, 16)])
def test_user_batches_sampling_draws_full_batches_of_distinct_users(n_users, batch_size):
    # microsoft/recommenders' ImplicitCF.train_loader: n // batch + 1 batches of batch users, distinct
    # when there are at least batch users (with replacement otherwise), one positive each
    R = small_graph(n_users=n_users, n_items=30, density=0.3)
    problem = BPRGraphProblem(R, dim=2, layers=1, reg=0.0, batch_size=batch_size, negatives=1, loss="bpr",
                              sampling="user-batches", seed=0, num_threads=1, device=torch.device("cpu"),
                              timer=SectionTimer())
    dense = R.toarray() > 0
    rng = np.random.default_rng(3)
    counts = np.zeros(n_users)
    repeats = 0
    for _ in range(30):
        batches = list(problem.epoch_batches(0, rng))
        assert len(batches) == R.nnz // batch_size + 1
        for rows, inverse, nodes in batches:
            assert inverse.size == 3 * batch_size
            u, i = nodes[:batch_size], nodes[batch_size:2 * batch_size] - n_users
            assert dense[u, i].all()
            repeats += batch_size - np.unique(u).size
            counts += np.bincount(u, minlength=n_users)
    if n_users >= batch_size:
        assert repeats == 0
    else:
        assert repeats > 0
    assert chisquare(counts).pvalue > 1e-3


def test_interaction_sampling_visits_every_pair_once_per_epoch():
    R = small_graph()
    problem = BPRGraphProblem(R, dim=2, layers=1, reg=0.0, batch_size=7, negatives=1, loss="bpr",
                              sampling="interaction", seed=0, num_threads=1, device=torch.device("cpu"),
                              timer=SectionTimer())
    pairs = []
    for rows, inverse, nodes in problem.epoch_batches(0, np.random.default_rng(1)):
        b = inverse.size // 3
        pairs += list(zip(nodes[:b], nodes[b:2 * b] - R.shape[0]))
    expected = list(zip(*R.nonzero()))
    assert sorted(pairs) == sorted((int(a), int(c)) for a, c in expected)


# --------------------------------------------------------------------------- initialisation
def test_xavier_init_is_glorot_uniform_per_table():
    # Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (rows + dim)), variance 2 / (rows + dim), per table
    n_users, n_items, dim = 300, 1200, 64
    R = sp.csr_matrix((np.ones(n_users), (np.arange(n_users), np.arange(n_users) % n_items)), shape=(n_users, n_items))
    problem = BPRGraphProblem(R, dim=dim, layers=1, reg=0.0, batch_size=8, negatives=1, loss="bpr", sampling="user",
                              seed=5, num_threads=1, device=torch.device("cpu"), timer=SectionTimer(), init="xavier")
    E = problem.embedding.detach().double().numpy()
    for table, rows in ((E[:n_users], n_users), (E[n_users:], n_items)):
        bound = np.sqrt(6.0 / (rows + dim))
        assert np.abs(table).max() <= bound and np.abs(table).max() > 0.99 * bound
        n = table.size
        assert abs(table.mean()) < 4 * bound / np.sqrt(3 * n)
        # sample variance of n uniforms: standard error about var * sqrt(0.8 / n)
        assert abs(table.var() - 2.0 / (rows + dim)) < 5 * (2.0 / (rows + dim)) * np.sqrt(0.8 / n)
        # uniform, not normal: a tenth of the entries in each tenth of [-a, a]
        counts = np.histogram(table, bins=10, range=(-bound, bound))[0]
        assert chisquare(counts).pvalue > 1e-4


def test_normal_init_has_the_requested_std_and_init_reaches_the_model():
    R = random_user_items()
    problem = BPRGraphProblem(R, dim=64, layers=1, reg=0.0, batch_size=8, negatives=1, loss="bpr", sampling="user",
                              seed=5, num_threads=1, device=torch.device("cpu"), timer=SectionTimer(), init_std=0.03)
    E = problem.embedding.detach().double().numpy()
    assert abs(E.std() - 0.03) < 5 * 0.03 / np.sqrt(2 * E.size)
    # the model's untrained layer-0 users (40 x 8) are the draw asked for: xavier's variance
    # 2 / (40 + 8) = 0.042 within its bound, not the default normal's 0.1^2 (30%: about 4 standard errors)
    xavier = LightGCN(**{**FAST, "epochs": 0}, init="xavier").fit(R).user_layer0_
    assert np.abs(xavier).max() <= np.sqrt(6.0 / 48)
    assert abs(xavier.var() / (2.0 / 48) - 1) < 0.3


# --------------------------------------------------------------------------- training behaviour
def test_same_seed_gives_identical_embeddings_and_another_seed_does_not():
    R = random_user_items()
    a = LightGCN(**FAST, seed=3).fit(R)
    b = LightGCN(**FAST, seed=3).fit(R)
    c = LightGCN(**FAST, seed=4).fit(R)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def planted_blocks(n_blocks=4, users_per=30, items_per=20, p_in=0.5, seed=0):
    """Users of block k interact only with items of block k (each with probability p_in)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = n_blocks * users_per, n_blocks * items_per
    block_u, block_i = np.arange(n_users) // users_per, np.arange(n_items) // items_per
    dense = (block_u[:, None] == block_i[None, :]) & (rng.random((n_users, n_items)) < p_in)
    return sp.csr_matrix(dense.astype(np.float32)), block_u, block_i


@pytest.mark.parametrize("cls,kwargs", [(LightGCN, dict(layers=2)), (BPRMF, {})])
def test_planted_structure_is_recovered(cls, kwargs):
    R, block_u, block_i = planted_blocks()
    rng = np.random.default_rng(1)
    coo = R.tocoo()
    held = rng.random(coo.nnz) < 0.2
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=R.shape)
    test = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=R.shape)
    model = cls(dim=16, epochs=30, batch_size=256, lr=0.01, num_threads=1, device="cpu", **kwargs).fit(train)
    items, _ = model.recommend(np.arange(R.shape[0]), n=5)
    in_block = block_i[items] == block_u[:, None]
    assert in_block.mean() > 0.95  # random ranking: 0.25
    table = recforge.evaluate(model, train, test, metrics=["recall@10"])
    assert table.loc["recall@10", "value"] > 0.5  # random ranking: about 10 / 64


def test_early_stopping_on_validation_keeps_the_best_epoch():
    R, _, _ = planted_blocks(seed=2)
    coo = R.tocoo()
    held = np.random.default_rng(0).random(coo.nnz) < 0.2
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=R.shape)
    valid = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=R.shape)
    model = LightGCN(dim=8, layers=2, epochs=40, batch_size=256, lr=0.05, num_threads=1, device="cpu",
                     validation_metric="ndcg@10", early_stopping=2).fit(train, validation=valid)
    history = model.train_history_
    metrics = [r.metric for r in history.records]
    assert history.best_metric == max(metrics)
    final = recforge.evaluate(model, train, valid, metrics=["ndcg@10"]).loc["ndcg@10", "value"]
    assert final == pytest.approx(history.best_metric, rel=1e-6)
    with pytest.raises(ValueError, match="validation"):
        LightGCN(**FAST, early_stopping=2).fit(train)


def test_checkpoint_resume_equals_one_run(tmp_path):
    R = random_user_items()
    whole = LightGCN(**{**FAST, "epochs": 4}).fit(R)
    LightGCN(**{**FAST, "epochs": 2}, checkpoint_dir=str(tmp_path)).fit(R)
    resumed = LightGCN(**{**FAST, "epochs": 4}, checkpoint_dir=str(tmp_path)).fit(R)
    assert resumed.train_history_.resumed_at == 2
    np.testing.assert_array_equal(whole.item_factors_, resumed.item_factors_)


def test_epoch_time_is_broken_down():
    model = LightGCN(**FAST).fit(random_user_items())
    sections = model.train_history_.records[-1].sections
    for name in ("sample", "propagate forward", "gather+loss", "propagate backward", "optimizer"):
        assert sections[name] >= 0.0, name


# --------------------------------------------------------------------------- users from a history
def test_item_fold_in_is_the_dense_propagation_formula():
    R = small_graph()
    problem = BPRGraphProblem(R, dim=4, layers=3, reg=0.0, batch_size=8, negatives=1, loss="bpr", sampling="user",
                              seed=0, num_threads=1, device=torch.device("cpu"), timer=SectionTimer())
    U = R.shape[0]
    A = normalize_adjacency(R).toarray()
    E = problem.embedding.detach().numpy().astype(np.float64)
    d_items = np.asarray(R.sum(axis=0)).ravel()
    layers = [E, A @ E, A @ A @ E]
    expected = sum(0.25 * X[U:] for X in layers) / np.sqrt(d_items)[:, None]
    np.testing.assert_allclose(problem.item_fold_in(), expected, rtol=1e-5, atol=1e-7)
    # a user's final vector is w0 e_u + |H|^-1/2 sum_{i in H} G_i (dense matrix powers as reference)
    final = sum(0.25 * np.linalg.matrix_power(A, l) @ E for l in range(4))
    H = R[5].indices
    np.testing.assert_allclose(0.25 * E[5] + expected[H].sum(0) / np.sqrt(H.size), final[5], rtol=1e-5, atol=1e-7)


def test_history_for_a_new_user_uses_the_fold_in_arrays():
    R = random_user_items(seed=5)
    model = LightGCN(**FAST, layers=2).fit(R)
    h = np.zeros(R.shape[1], dtype=np.float32)
    h[[1, 4, 7]] = 1.0
    q = model.item_fold_in_[[1, 4, 7]].astype(np.float64).sum(0) / np.sqrt(3)
    scores = np.delete(model.item_factors_ @ q, [1, 4, 7])
    _, got = model.recommend([-1], n=4, history=sp.csr_matrix(h))
    np.testing.assert_allclose(got[0], np.sort(scores)[::-1][:4], rtol=1e-5, atol=1e-7)
    # a training user given its own history gets exactly its stored vector
    again = model._fold_in(_chunk(np.array([2]), R[[2]]))
    np.testing.assert_allclose(again[0], model.user_factors_[2], rtol=1e-4, atol=1e-6)


def _chunk(codes, rows):
    from recforge.models.training_data import HistoryChunk

    return HistoryChunk(codes, rows.astype(np.float32), from_caller=True)


def test_bprmf_history_mean_for_new_users_and_stored_vectors_for_known():
    R = random_user_items()
    model = BPRMF(**FAST).fit(R)
    items, scores = model.recommend([-1], n=3, history=R[[4]])
    q = model.item_factors_[R[4].indices].mean(axis=0)
    expected = np.sort(np.delete(model.item_factors_ @ q, R[4].indices))[::-1][:3]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5)


# --------------------------------------------------------------------------- parameters and imports
@pytest.mark.parametrize("kwargs,name", [(dict(dim=0), "dim"), (dict(layers=-1), "layers"), (dict(lr=0), "lr"),
                                         (dict(reg=-1.0), "reg"), (dict(loss="hinge"), "loss"),
                                         (dict(sampling="pop"), "sampling"), (dict(negatives=0), "negatives"),
                                         (dict(batch_size=1.5), "batch_size"), (dict(early_stopping=0), "early_stopping"),
                                         (dict(init="he"), "init")])
def test_bad_parameters_are_named(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        LightGCN(**kwargs).fit(random_user_items())


def test_module_import_does_not_import_torch_and_missing_torch_names_the_extra():
    code = ("import sys; import recforge.models.graph.lightgcn, recforge.models.graph.bprmf; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "sys.modules['torch'] = None\n"
            "import scipy.sparse as sp, numpy as np\n"
            "from recforge.models import LightGCN\n"
            "try:\n    LightGCN(epochs=1).fit(sp.identity(3, format='csr'))\n"
            "except ImportError as e:\n    assert 'recforge[torch]' in str(e), e; print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# --------------------------------------------------------------------------- the contract
CONTRACT = {**FAST, "dim": 32}


class TestLightGCNContract(RecommenderContract):
    def make_model(self):
        return LightGCN(**CONTRACT)


class TestBPRMFContract(RecommenderContract):
    def make_model(self):
        return BPRMF(**CONTRACT)
