"""SASRec and BERT4Rec as recommenders: the contract mixin, history at request time, exclusion,
save/load, training on an easy sequential pattern, parameters and the torch-free import.

References: set logic for exclusion, the scores of a direct numpy forward through the stored
vectors (``user vector . item vector + bias``), and a synthetic task whose answer is known
(each item is followed by a fixed successor).
"""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import recforge  # noqa: E402
from recforge.data import Interactions  # noqa: E402
from recforge.models.sequential import BERT4Rec, SASRec  # noqa: E402
from test_models_contract import RecommenderContract  # noqa: E402

TINY = dict(hidden=16, heads=2, blocks=1, max_len=12, epochs=2, batch_size=16, num_threads=1, device="cpu",
            early_stopping_patience=None)


@pytest.fixture(autouse=True)
def quiet_matrix_order_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no event order.*")
        yield


class TestSASRecContract(RecommenderContract):
    def make_model(self):
        return SASRec(**TINY, loss="bce")


class TestSASRecSampledSoftmaxContract(RecommenderContract):
    def make_model(self):
        return SASRec(**TINY, loss="sampled_softmax", n_negatives=7, negative_sampler="popularity")


class TestBERT4RecContract(RecommenderContract):
    def make_model(self):
        return BERT4Rec(**TINY, loss="ce")


# ----------------------------------------------------------------------------- data

def successor_data(n_users=120, n_items=20, length=10, seed=0):
    """Each user walks i -> (i + 1) % n_items from a random start: the next item is always known."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_items, n_users)
    users = np.repeat(np.arange(n_users), length)
    items = (starts[:, None] + np.arange(length)[None, :]) % n_items
    times = np.tile(np.arange(length), n_users)
    # shuffle the rows: the order must come from the timestamps
    perm = rng.permutation(users.size)
    return Interactions(users[perm], items.reshape(-1)[perm], None, times[perm]), items


@pytest.mark.parametrize("cls,loss", [(SASRec, "ce"), (SASRec, "bce"), (SASRec, "sampled_softmax"), (BERT4Rec, "ce")])
def test_learns_an_ordered_pattern(cls, loss):
    data, items = successor_data()
    model = cls(hidden=32, heads=2, blocks=1, max_len=10, epochs=60 if loss == "bce" else 30, batch_size=32,
                lr=1e-2 if loss == "bce" else 5e-3, dropout=0.1, loss=loss, n_negatives=10, num_threads=1, device="cpu", early_stopping_patience=None, seed=1)
    model.fit(data)
    # a new user who has just seen 3, 4, 5 must get 6 first (history at request time, no refit)
    found, _ = model.recommend([-1, -1], n=2, history=[np.array([3, 4, 5]), np.array([11, 12])])
    if cls is BERT4Rec:
        # trained on masks inside sequences, asked at an appended mask: it learns more slowly
        assert 6 in found[0] and 13 in found[1]
    elif loss == "bce":
        # its negatives never come from the user's own walk, so BCE learns "later in the walk",
        # not which later item comes first
        assert 6 <= found[0, 0] <= 12 and 13 <= found[1, 0] <= 19
    else:
        assert found[:, 0].tolist() == [6, 13]


def test_order_matters_for_sasrec():
    data, _ = successor_data()
    model = SASRec(hidden=32, heads=2, blocks=1, max_len=10, epochs=30, batch_size=32, lr=5e-3, dropout=0.1,
                   num_threads=1, device="cpu", early_stopping_patience=None, seed=1).fit(data)
    a, _ = model.recommend([-1], n=1, history=[np.array([3, 4, 5])], exclude_seen=False)
    b, _ = model.recommend([-1], n=1, history=[np.array([5, 4, 3])], exclude_seen=False)
    assert a[0, 0] == 6 and b[0, 0] != 6


def test_stored_users_use_their_sequence():
    data, items = successor_data(n_users=40)
    model = SASRec(**TINY).fit(data)
    users = np.arange(5)
    stored = model.recommend(users, n=4)
    given = model.recommend(users, n=4, history=[items[u] for u in users])
    np.testing.assert_array_equal(stored[0], given[0])
    np.testing.assert_allclose(stored[1], given[1], rtol=1e-5, atol=1e-6)


def test_scores_are_user_vector_dot_item_vector():
    data, _ = successor_data(n_users=30)
    for model in (SASRec(**TINY).fit(data), BERT4Rec(**TINY).fit(data)):
        items, scores = model.recommend(np.arange(4), n=5, exclude_seen=False)
        U, V = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
        bias = getattr(model, "item_bias_", None)
        full = U[:4] @ V.T + (0 if bias is None else bias)
        np.testing.assert_allclose(scores, np.take_along_axis(full, items, axis=1), rtol=1e-4, atol=1e-5)
        # score_histories (used by the sampled leave-one-out protocol) agrees with recommend
        hist = model._stored_sequences(np.arange(4))
        got = model.score_histories(hist, items)
        np.testing.assert_allclose(got, scores, rtol=1e-4, atol=1e-5)


def test_excluded_and_filtered_items_never_returned():
    data, _ = successor_data(n_users=30)
    model = BERT4Rec(**TINY).fit(data)
    hist = [np.array([1, 2, 3, 4]), np.array([7]), np.array([], dtype=np.int64)]
    banned = np.array([0, 5, 9])
    found, scores = model.recommend([-1, -1, -1], n=20 - 3, history=hist, filter_items=banned)
    for row, h in zip(found, hist):
        real = row[row >= 0]
        assert not set(real) & set(h) and not set(real) & set(banned)
        assert len(set(real)) == real.size
        assert real.size == min(17, 20 - len(set(h) | set(banned)))
    assert (model.item_factors_.shape[0], found.max()) == (20, found.max()) and found.max() < 20, \
        "padding is not an item: only codes 0..n_items-1 come back"


def test_padding_is_never_recommended_and_empty_history_works():
    data, _ = successor_data(n_users=30)
    model = SASRec(**TINY).fit(data)
    found, scores = model.recommend([-1], n=20, history=[np.array([], dtype=np.int64)])
    assert sorted(found[0]) == list(range(20)) and np.isfinite(scores).all()


def test_save_load_identity(tmp_path):
    data, _ = successor_data(n_users=30)
    for model in (SASRec(**TINY), BERT4Rec(**TINY, mask_prob=0.3)):
        model.fit(data)
        model.save(tmp_path / type(model).__name__)
        loaded = recforge.load(tmp_path / type(model).__name__)
        assert loaded.get_params() == model.get_params()
        for kwargs in ({}, {"history": [np.array([2, 3]), np.array([9, 1, 4])], "users": [-1, -1]}):
            users = kwargs.pop("users", np.arange(6))
            a = model.recommend(users, n=5, **kwargs)
            b = loaded.recommend(users, n=5, **kwargs)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_same_seed_same_model():
    data, _ = successor_data(n_users=30)
    a = SASRec(**TINY, seed=3).fit(data)
    b = SASRec(**TINY, seed=3).fit(data)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    c = SASRec(**TINY, seed=4).fit(data)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_early_stopping_on_given_validation():
    data, items = successor_data(n_users=60)
    seen = []
    model = SASRec(hidden=16, heads=1, blocks=1, max_len=10, epochs=6, batch_size=16, num_threads=1, device="cpu",
                   early_stopping_patience=2)
    model.fit(data, validation=([items[u][:5] for u in range(10)], [items[u][5] for u in range(10)]),
              on_validate=lambda epoch, value: seen.append((epoch, value)))
    assert [e for e, _ in seen] == list(range(len(seen))) and 1 <= len(seen) <= 6
    assert all(0.0 <= v <= 1.0 for _, v in seen)
    assert model.history_["best_epoch"] == int(np.argmax([v for _, v in seen]))
    with pytest.raises(ValueError, match="validation"):
        model.fit(data, validation=([np.array([1])], [1, 2]))


@pytest.mark.parametrize("kwargs,match", [
    ({"hidden": 10, "heads": 3}, "multiple of heads"), ({"dropout": 1.0}, "dropout"), ({"loss": "hinge"}, "loss"),
    ({"negative_sampler": "zipf"}, "negative_sampler"), ({"max_len": 0}, "max_len"), ({"lr": -1.0}, "lr"),
    ({"epochs": 0}, "epochs"), ({"early_stopping_patience": 0}, "early_stopping_patience"),
])
def test_bad_parameters_are_named(kwargs, match):
    data, _ = successor_data(n_users=10)
    with pytest.raises((ValueError, TypeError), match=match):
        SASRec(**{**TINY, **kwargs}).fit(data)


def test_bert4rec_mask_prob_is_checked():
    data, _ = successor_data(n_users=10)
    with pytest.raises(ValueError, match="mask_prob"):
        BERT4Rec(**TINY, mask_prob=0.0).fit(data)


def test_matrix_input_warns_about_order():
    data, _ = successor_data(n_users=10)
    with pytest.warns(UserWarning, match="no event order"):
        warnings.simplefilter("always")
        SASRec(**TINY).fit(data.to_csr())


def test_import_needs_no_torch_and_missing_torch_is_named(tmp_path):
    code = ("import sys; import recforge.models.sequential as s; from recforge.models import SASRec, BERT4Rec; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    blocker = tmp_path / "torch.py"
    blocker.write_text("raise ImportError('no torch here')\n")
    code = ("import numpy as np; from recforge.data import Interactions; from recforge.models import SASRec\n"
            "try:\n    SASRec().fit(Interactions(np.array([0, 0]), np.array([0, 1]), None, np.array([0, 1])))\n"
            "except ImportError as e:\n    assert 'pip install \"recforge[torch]\"' in str(e), e\nelse:\n"
            "    raise SystemExit('no ImportError')\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path),
                                                                                 "PATH": "/usr/bin:/bin"})
