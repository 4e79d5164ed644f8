"""The house every model family stands on: TrainingData and requirements, ordered histories,
the embedding base (through a tiny PureSVD subclass checked by the contract mixin), the lazy
registry and lazy imports.

References are independent of the code under test: Python sorts for event order, numpy's SVD
and dense products for the embedding scores, fresh interpreters for what an import loads.
"""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import recforge
from recforge.data import Interactions
from recforge.models import EmbeddingRecommender, MissingInputError, Recommender, TrainingData, registry
from test_models_contract import RecommenderContract, random_user_items

TESTS = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- a tiny embedding model
class PureSVD(EmbeddingRecommender):
    """Item vectors: the top-d right singular vectors V of R; a user's vector: its row times V,
    so the fold-in of a history h is h V (the sum rule, which equals the stored vector)."""

    def __init__(self, dim: int = 6, bias: bool = False):
        self.dim = dim
        self.bias = bias

    def _fit(self, data):
        R = data.matrix.toarray().astype(np.float64)
        _, _, vt = np.linalg.svd(R, full_matrices=False)
        self.item_factors_ = vt[: self.dim].T.astype(np.float32)
        self.user_factors_ = (R @ vt[: self.dim].T).astype(np.float32)
        if self.bias:
            self.item_bias_ = (R.sum(axis=0) / max(R.sum(), 1.0)).astype(np.float32)

    def _fold_in(self, history):
        return np.asarray(history.rows @ self.item_factors_, dtype=np.float32)


registry.register(PureSVD)


class TestEmbeddingContract(RecommenderContract):
    def make_model(self):
        return PureSVD(dim=16)


class TestEmbeddingWithBiasContract(RecommenderContract):
    def make_model(self):
        return PureSVD(dim=12, bias=True)

    def test_registered(self):
        pytest.skip("the same class as TestEmbeddingContract")


def test_embedding_scores_equal_dense_products():
    R = random_user_items(30, 25, seed=3)
    model = PureSVD(dim=5, bias=True).fit(R)
    U, V, b = (model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64),
               model.item_bias_.astype(np.float64))
    full = U @ V.T + b
    users = np.arange(30)
    items, scores = model.recommend(users, n=7)
    for u in users:
        allowed = [i for i in range(25) if i not in set(R[u].indices)]
        want = sorted(allowed, key=lambda i: (-full[u, i], i))[:7]
        np.testing.assert_allclose(scores[u], full[u, want], rtol=1e-5, atol=1e-5)
        assert set(items[u]) == set(want)
    u, i = np.repeat(users, 25), np.tile(np.arange(25), 30)
    np.testing.assert_allclose(model.predict(u, i), full[u, i], rtol=1e-6, atol=1e-6)


def test_embedding_similar_items_by_cosine_never_itself():
    R = random_user_items(30, 25, seed=4)
    model = PureSVD(dim=5).fit(R)
    V = model.item_factors_.astype(np.float64)
    Vn = V / np.linalg.norm(V, axis=1, keepdims=True)
    cos = Vn @ Vn.T
    found, scores = model.similar_items([0, 7, 24], n=4)
    for row, q in enumerate((0, 7, 24)):
        want = sorted((j for j in range(25) if j != q), key=lambda j: (-cos[q, j], j))[:4]
        np.testing.assert_allclose(scores[row], cos[q, want], rtol=1e-5, atol=1e-5)
        assert q not in found[row]
    users, _ = model.similar_users([2], n=3)
    assert users.shape == (1, 3) and 2 not in users[0]


def test_embedding_default_fold_in_is_the_weighted_mean():
    class MeanFold(PureSVD):
        _fold_in = EmbeddingRecommender._fold_in

    R = random_user_items(20, 15, seed=5)
    model = MeanFold(dim=3).fit(R)
    H = sp.csr_matrix(np.array([[0, 2.0, 0, 1.0] + [0] * 11, [0] * 15], dtype=np.float32))
    q = model._fold_in(type("H", (), {"rows": H})())
    V = model.item_factors_.astype(np.float64)
    np.testing.assert_allclose(q[0], (2 * V[1] + V[3]) / 3, rtol=1e-6)
    np.testing.assert_array_equal(q[1], 0.0)


# --------------------------------------------------------------------------- TrainingData
def _events():
    users = np.array([0, 1, 0, 0, 1, 2, 0])
    items = np.array([3, 1, 2, 5, 4, 0, 1])
    times = np.array([50, 10, 10, 50, 5, 7, 20])
    return Interactions(users, items, values=np.array([1, 2, 3, 4, 5, 1, 2.0]), timestamps=times)


def test_sequences_follow_time_then_event_order():
    inter = _events()
    td = TrainingData.of(inter)
    want = {}
    for row, (u, i, t) in enumerate(zip(inter.users, inter.items, inter.timestamps)):
        want.setdefault(u, []).append((t, row, i))
    for u in range(inter.n_users):
        np.testing.assert_array_equal(td.sequences[u], [i for _, _, i in sorted(want.get(u, []))])
        np.testing.assert_array_equal(td.sequence_timestamps[u], [t for t, _, _ in sorted(want.get(u, []))])


def test_parts_are_built_lazily():
    td = TrainingData.of(_events())
    assert td._matrix is None and td._sequences is None
    recforge.models.ItemKNN(k=2, progress=False).fit(td)
    assert td._matrix is not None and td._sequences is None, "KNN reads the matrix only"


def test_item_texts_join_fields():
    pd = pytest.importorskip("pandas")
    inter = _events()
    inter.item_metadata = pd.DataFrame({"title": ["a", "b", None, "d", "e", "f"],
                                        "genres": ["x|y", "y", "z", None, "x", "y"]},
                                       index=inter.item_ids.to_numpy())
    td = TrainingData.of(inter)
    assert td.item_texts(("title", "genres")) == ["a x y", "b y", "z", "d", "e x", "f y"]
    with pytest.raises(MissingInputError, match="none of the fields"):
        td.item_texts(("plot",))


class _NeedsOrder(Recommender):
    requires = frozenset({"sequences", "timestamps"})

    def __init__(self):
        pass

    def _fit(self, data):
        self.last_ = np.array([s[-1] if s.size else -1 for s in data.sequences])

    def _recommend_chunk(self, codes, history, n, exclude):
        self.seen_sequences = history.sequences
        out = np.full((codes.size, n), -1, np.int64)
        return out, np.full((codes.size, n), -np.inf, np.float32)


def test_missing_requirement_is_named():
    R = random_user_items(10, 8)
    with pytest.raises(MissingInputError, match="event order.*timestamps|sequences, timestamps"):
        _NeedsOrder().fit(R)
    no_time = Interactions(np.array([0, 0, 1]), np.array([1, 2, 0]))
    with pytest.raises(MissingInputError, match="timestamps") as info:
        _NeedsOrder().fit(no_time)
    assert "sequences" not in str(info.value).split("has no")[1]
    model = _NeedsOrder().fit(_events())
    np.testing.assert_array_equal(model.last_, [5, 1, 0])


def test_history_reaches_the_model_in_order():
    model = _NeedsOrder().fit(_events())
    model.recommend([0, 2], n=2)
    np.testing.assert_array_equal(model.seen_sequences[0], [2, 1, 3, 5])    # stored, oldest first
    model.recommend([-1, 1], n=2, history=[[4, 0, 4], [2]])
    np.testing.assert_array_equal(model.seen_sequences[0], [4, 0, 4])
    hist = Interactions.from_arrays(np.array([2, 2, 2]), np.array([5, 3, 4]), timestamps=np.array([9, 1, 5]))
    model.recommend([2], n=2, history=hist, ids=True)
    np.testing.assert_array_equal(model.seen_sequences[0], [3, 4, 5])


def test_sequence_history_equals_matrix_history():
    R = random_user_items(30, 20, seed=2)
    R.data[:] = 1
    model = recforge.models.ItemKNN(k=5, progress=False).fit(R)
    seqs = [R[u].indices[::-1].copy() for u in (3, 4)]
    a = model.recommend([-1, -1], n=6, history=seqs)
    b = model.recommend([-1, -1], n=6, history=R[[3, 4]])
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="history\\[0\\]"):
        model.recommend([-1], n=3, history=[[99]])
    with pytest.raises(ValueError, match="one item sequence per user"):
        model.recommend([-1, -1], n=3, history=[[1]])


# --------------------------------------------------------------------------- registry and imports
def test_import_models_loads_no_optional_library():
    code = ("import sys, recforge.models as m; "
            "heavy = [x for x in ('torch', 'pandas', 'sentence_transformers', 'gensim', 'sklearn', 'dask', "
            "'fastapi') if x in sys.modules]; assert not heavy, heavy; "
            "import recforge; recforge.models.ItemKNN; recforge.kernels.similarity_topk; "
            "recforge.datasets.movielens; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_paths_resolve_to_their_names():
    for name in registry.available():
        cls = registry.get(name)
        assert issubclass(cls, Recommender) and cls.__name__ == name
        path = registry.path_of(name)
        if path is not None:
            assert path == f"{cls.__module__}:{cls.__qualname__}"


def test_builtin_name_cannot_be_taken():
    class ItemKNN(Recommender):
        pass

    with pytest.raises(ValueError, match="ItemKNN"):
        registry.register(ItemKNN)


def test_every_registered_model_has_a_contract_suite():
    for info in pkgutil.iter_modules([str(TESTS)]):
        if info.name.startswith("test_models"):
            importlib.import_module(info.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    covered = {type(sub().make_model()).__name__ for sub in subclasses(RecommenderContract)}
    missing = set(registry.available()) - covered
    assert not missing, f"registered models without a RecommenderContract suite: {sorted(missing)}"


def test_old_module_path_warns_and_still_works():
    sys.modules.pop("recforge.models.knn", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("recforge.models.knn")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert old.ItemKNN is recforge.models.ItemKNN
