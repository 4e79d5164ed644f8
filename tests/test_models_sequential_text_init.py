"""SASRec / BERT4Rec with ``item_init="text"``: the initial item table against an independent
computation, missing texts, save/load, and the contract with a text-initialised model.

References: MiniLM vectors from sentence-transformers called directly on texts written out in
the test, projected by an eigendecomposition of the covariance matrix (numpy ``eigh``, not the
SVD the code uses) with the documented sign rule and RMS row norm 1. The initial table is read
from a model trained with a learning rate of 1e-12 (Adam moves a weight by about lr per
step, so the trained table equals the initial one to ~1e-11).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")

import recforge  # noqa: E402
from recforge.data import Interactions  # noqa: E402
from recforge.models.sequential import BERT4Rec, SASRec  # noqa: E402
from recforge.models.sequential.text_init import principal_projection  # noqa: E402
from recforge.models.training_data import MissingInputError  # noqa: E402
from minilm_reference import minilm_vectors  # noqa: E402
from test_models_contract import RecommenderContract  # noqa: E402

TITLES = ["Space Robot Wars", "Alien Space Ship", "Robot Uprising", "Space Station Alien", "Galaxy Robot",
          "Alien Planet", "Paris Love Story", "Wedding in Paris", "Love and Letters", "Summer Love",
          "Dance of Love", "Paris Romance"]
GENRES = ["Sci-Fi|Action"] * 6 + ["Romance|Drama"] * 6
#: what item_texts(("title", "genres")) must give: fields joined by a space, "|" -> space
TEXTS = [f"{t} {g.replace('|', ' ')}" for t, g in zip(TITLES, GENRES)]
QUICK = dict(heads=2, blocks=1, max_len=8, epochs=1, batch_size=8, num_threads=1, device="cpu",
             early_stopping_patience=None, item_text_fields=("title", "genres"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path / "cache"))


def movie_data(with_metadata=True):
    """30 users, each a run of 6 of the 12 movies (ids 100..111), in time order."""
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for u in range(30):
        for t, i in enumerate(rng.choice(12, size=6, replace=False)):
            users.append(u)
            items.append(100 + i)
            times.append(t)
    meta = pd.DataFrame({"title": TITLES, "genres": GENRES}, index=np.arange(100, 112)) if with_metadata else None
    return Interactions.from_arrays(np.array(users), np.array(items), None, np.array(times), item_metadata=meta)


def pca_by_eigh(X, dim):
    """Centred rows on the top covariance eigenvectors (largest |loading| positive), zero padded,
    scaled to root-mean-square row norm 1."""
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    values, vectors = np.linalg.eigh(Xc.T @ Xc)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    rank = int(np.sum(values > values[0] * 1e-10))
    V = vectors[:, :min(dim, rank)]
    for j in range(V.shape[1]):
        if V[np.argmax(np.abs(V[:, j])), j] < 0:
            V[:, j] *= -1
    T = np.zeros((X.shape[0], dim))
    T[:, :V.shape[1]] = Xc @ V
    return T / np.sqrt(np.mean(np.sum(T ** 2, axis=1)))


@pytest.mark.parametrize("cls,hidden", [(SASRec, 8), (BERT4Rec, 16)])
def test_initial_item_table_is_the_projected_minilm_vectors(cls, hidden):
    data = movie_data()
    model = cls(hidden=hidden, lr=1e-12, item_init="text", **QUICK).fit(data)
    codes = model.item_ids_.codes(np.arange(100, 112))
    want = pca_by_eigh(minilm_vectors(TEXTS), hidden)   # hidden 16 > rank 11: zero columns too
    got = model.item_factors_[codes]
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert np.sqrt(np.mean(np.sum(got.astype(np.float64) ** 2, axis=1))) == pytest.approx(1.0, abs=1e-5)
    # the rest of the network starts as with the random init (the text is encoded before seeding)
    random = cls(hidden=hidden, lr=1e-12, item_init="random", **QUICK).fit(data)
    text_net = model._net().state_dict()
    for name, weight in random._net().state_dict().items():
        if name != "item_embedding.weight":
            np.testing.assert_allclose(text_net[name].numpy(), weight.numpy(), atol=1e-9, err_msg=name)
    assert not np.allclose(random.item_factors_[codes], got, atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_and_dense_projections_equal_the_eigh_reference(seed):
    rng = np.random.default_rng(seed)
    X = sp.random(40, 25, density=0.2, random_state=seed, format="csr") * rng.uniform(1, 3)
    want = pca_by_eigh(X.toarray(), 6)
    for got in (principal_projection(X, 6), principal_projection(X.toarray(), 6)):
        np.testing.assert_allclose(got / np.sqrt(np.mean(np.sum(got ** 2, axis=1))), want, atol=1e-8)


def test_missing_item_texts_name_the_argument():
    with pytest.raises(MissingInputError, match="item_init='text'.*item_text_fields"):
        SASRec(hidden=8, item_init="text", **QUICK).fit(movie_data(with_metadata=False))
    params = dict(QUICK, item_text_fields=("plot",))
    with pytest.raises(MissingInputError, match=r"item_text_fields=\('plot',\)"):
        SASRec(hidden=8, item_init="text", **params).fit(movie_data())
    # random init needs no texts
    SASRec(hidden=8, **QUICK).fit(movie_data(with_metadata=False))


@pytest.mark.parametrize("bad,error,name", [
    (dict(item_init="glove"), ValueError, "item_init"),
    (dict(item_encoder="attributes"), ValueError, "item_encoder"),
    (dict(item_encoder="minilm"), ValueError, "item_encoder"),
    (dict(item_text_fields="title"), TypeError, "item_text_fields"),
    (dict(item_encoder_options=[("batch_size", 2)]), TypeError, "item_encoder_options"),
])
def test_bad_text_init_parameters_are_named(bad, error, name):
    params = {**QUICK, "item_init": "text", **bad}
    with pytest.raises(error, match=name):
        SASRec(hidden=8, **params).fit(movie_data())


def test_save_load_identity_without_texts(tmp_path):
    model = SASRec(hidden=8, lr=1e-2, item_init="text", item_encoder="tfidf", **QUICK).fit(movie_data())
    model.save(tmp_path / "m")
    loaded = recforge.load(tmp_path / "m")
    assert loaded.item_init == "text" and loaded.item_text_fields == ("title", "genres")
    assert loaded.item_encoder == "tfidf"
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)
    history = [np.array([0, 3, 5]), np.array([7])]
    a = model.recommend([-1, -1], n=5, history=history)
    b = loaded.recommend([-1, -1], n=5, history=history)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


class TestTextInitSASRecContract(RecommenderContract):
    """A tfidf-initialised SASRec (the sparse projection path) passes the whole contract."""

    def make_model(self):
        return SASRec(hidden=4, heads=2, blocks=1, max_len=12, epochs=2, batch_size=16, num_threads=1,
                      device="cpu", early_stopping_patience=None, loss="bce", item_init="text",
                      item_encoder="tfidf", item_text_fields=("title",))

    def fit_input(self, data):
        if isinstance(data, Interactions):
            inter = data
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inter = Interactions.from_csr(sp.csr_matrix(data))
        ids = inter.item_ids.to_numpy()
        words = ["space", "robot", "love", "paris", "war", "ghost", "dog"]
        titles = [f"{words[k % 7]} {words[(3 * k) % 7]} part {k % 4}" for k in range(len(ids))]
        inter.item_metadata = pd.DataFrame({"title": titles}, index=list(ids))
        return inter
