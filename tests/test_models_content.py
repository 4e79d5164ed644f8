"""ContentKNN: scores against brute-force numpy/scikit-learn, encoders against their libraries,
cold start, the embedding cache, explanations, and the estimator contract."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

from recforge.data import Interactions  # noqa: E402
from recforge.data.idmap import IdMap  # noqa: E402
from recforge.models.content import ContentKNN  # noqa: E402
from recforge.models.training_data import MissingInputError  # noqa: E402

from minilm_reference import minilm_folder, minilm_vectors  # noqa: E402
from test_models_contract import RecommenderContract  # noqa: E402

WORDS = ["space", "robot", "alien", "love", "paris", "wedding", "war", "soldier", "ghost", "house",
         "dog", "boy", "heist", "bank", "dragon", "king", "ship", "storm", "dance", "music"]


def item_text(k: int) -> str:
    """A seeded pseudo-title for item k (varied word counts: scores rarely tie)."""
    rng = np.random.default_rng(1000 + k)
    words = rng.choice(WORDS, size=3 + k % 4, replace=True)
    return " ".join(words) + f" item{k}"


def metadata_for(ids) -> "pd.DataFrame":
    """Metadata indexed by the given item ids; the text follows the number in the id."""
    ks = [int(re.sub(r"\D", "", str(i))) for i in ids]
    genres = ["|".join(["Drama", "Comedy", "Sci-Fi"][: 1 + k % 3]) for k in ks]
    return pd.DataFrame({"title": [item_text(k) for k in ks], "genres": genres}, index=list(ids))


def with_metadata(data):
    """An Interactions with item metadata for a CSR or an Interactions (matched by id)."""
    if sp.issparse(data):
        return Interactions.from_csr(sp.csr_matrix(data), item_metadata=metadata_for(range(data.shape[1])))
    data.item_metadata = metadata_for(data.item_ids.to_numpy())
    return data


def catalogue():
    """12 movies: 0-5 science fiction, 6-11 romance; users 0-2 like sci-fi, 3-5 romance."""
    titles = ["Space Robot Wars", "Alien Space Ship", "Robot Uprising", "Space Station Alien",
              "Galaxy Robot", "Alien Planet", "Paris Love Story", "Wedding in Paris", "Love and Letters",
              "Summer Love", "Dance of Love", "Paris Romance"]
    genres = ["Sci-Fi"] * 6 + ["Romance"] * 6
    tags = ["robots", "aliens", "robots", "space", "", "aliens", "paris", "", "letters", "summer", "dance", "paris"]
    meta = pd.DataFrame({"title": titles, "genres": genres, "tags": tags}, index=np.arange(100, 112))
    users = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 5]
    items = [0, 1, 2, 0, 3, 1, 2, 3, 6, 7, 7, 8, 6, 8, 9]
    ts = np.arange(len(users))
    inter = Interactions.from_arrays(np.array(users), np.array(items) + 100, np.ones(len(users)), ts,
                                     item_ids=IdMap(np.arange(100, 112)), item_metadata=meta)
    return inter, meta


def brute_force_scores(texts, R, weights=None):
    """sklearn TF-IDF vectors; score = sum_j w_uj cos(j, i) with w the row-normalised weights."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity
    X = TfidfVectorizer().fit_transform(texts)
    S = cosine_similarity(X)
    W = np.asarray(R.toarray() if weights is None else weights, dtype=np.float64)
    if weights is None:
        W = (W != 0).astype(np.float64)
    W = W / np.maximum(np.abs(W).sum(axis=1, keepdims=True), 1e-300)
    return W @ S


# ---------------------------------------------------------------------- scores
def test_tfidf_profile_scores_equal_brute_force():
    inter = with_metadata(sp.random(15, 25, density=0.25, random_state=3, format="csr", dtype=np.float32))
    R = inter.to_csr()
    model = ContentKNN(fields=("title", "genres")).fit(inter)
    texts = [f"{t} {g.replace('|', ' ')}" for t, g in zip(inter.item_metadata["title"], inter.item_metadata["genres"])]
    want = brute_force_scores(texts, R)
    u, i = np.nonzero(np.ones(want.shape, dtype=bool))
    np.testing.assert_allclose(model.predict(u, i).reshape(want.shape), want, rtol=1e-5, atol=1e-6)
    items, scores = model.recommend(np.arange(R.shape[0]), n=5)
    for user in range(R.shape[0]):
        s = np.where(R[user].toarray().ravel() > 0, -np.inf, want[user])
        order = sorted(range(s.size), key=lambda j: (-s[j], j))[:5]
        np.testing.assert_allclose(scores[user], s[order], rtol=1e-5, atol=1e-6)


def test_rating_and_recency_profiles_equal_hand_weights():
    inter, meta = catalogue()
    rated = Interactions.from_arrays(inter.user_ids[inter.users], inter.item_ids[inter.items],
                                     np.arange(1, len(inter) + 1, dtype=np.float32), inter.timestamps,
                                     item_ids=inter.item_ids, item_metadata=meta)
    texts = [" ".join(str(x) for x in row if str(x)) for row in rated.item_metadata[["title", "genres", "tags"]].to_numpy()]
    R = rated.to_csr()
    model = ContentKNN(profile="rating").fit(rated)
    want = brute_force_scores(texts, R, R.toarray())
    u, i = np.nonzero(np.ones(want.shape, dtype=bool))
    np.testing.assert_allclose(model.predict(u, i).reshape(want.shape), want, rtol=1e-5, atol=1e-6)
    # recency, half-life 1: user 0 saw items 0, 1, 2 in that order -> weights 1/4, 1/2, 1
    model = ContentKNN(profile="recency", half_life=1.0).fit(rated)
    W = np.zeros((1, 12))
    W[0, [0, 1, 2]] = [0.25, 0.5, 1.0]
    want0 = brute_force_scores(texts, R[:1], W)[0]
    np.testing.assert_allclose(model.predict(np.zeros(12, int), np.arange(12)), want0, rtol=1e-5, atol=1e-7)
    # a history in another order weighs the items differently: computed at request time
    items, scores = model.recommend([-1], n=12, history=[[2, 1, 0]], exclude_seen=False)
    W[0, [0, 1, 2]] = [1.0, 0.5, 0.25]
    want_new = brute_force_scores(texts, R[:1], W)[0]
    np.testing.assert_allclose(scores[0], want_new[items[0]], rtol=1e-5, atol=1e-7)


def test_k_neighbours_keep_the_k_most_similar_items():
    inter = with_metadata(sp.random(12, 20, density=0.3, random_state=5, format="csr", dtype=np.float32))
    R = inter.to_csr()
    model = ContentKNN(fields=("title", "genres"), k=3).fit(inter)
    texts = [f"{t} {g.replace('|', ' ')}" for t, g in zip(inter.item_metadata["title"], inter.item_metadata["genres"])]
    from sklearn.feature_extraction.text import TfidfVectorizer
    X = TfidfVectorizer().fit_transform(texts)
    S = (X @ X.T).toarray()
    np.fill_diagonal(S, -np.inf)
    Sk = np.zeros_like(S)
    for j in range(S.shape[0]):
        top = sorted(range(S.shape[1]), key=lambda c: (-S[j, c], c))[:3]
        Sk[j, top] = np.maximum(S[j, top], 0)
    W = (R.toarray() > 0).astype(float)
    W /= np.maximum(W.sum(axis=1, keepdims=True), 1)
    want = W @ Sk
    u, i = np.nonzero(np.ones(want.shape, dtype=bool))
    np.testing.assert_allclose(model.predict(u, i).reshape(want.shape), want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- encoders
def test_attributes_are_multi_hot_labels():
    inter, _ = catalogue()
    inter.item_metadata = inter.item_metadata.assign(attributes=[["a", "b"], ["b"], [], ["a"], ["c"], ["c", "a"],
                                                                 ["b"], ["b"], ["a"], ["a"], ["c"], ["c"]])
    model = ContentKNN(encoder="attributes", fields=("attributes", "genres")).fit(inter)
    names = model._encoder.feature_names()
    assert names == ["attributes=a", "attributes=b", "attributes=c", "genres=Romance", "genres=Sci-Fi"]
    dense = model.item_vectors_.toarray()
    want = np.zeros(5)
    want[[0, 1, 4]] = 1 / np.sqrt(3)                 # item 100: a, b, Sci-Fi
    np.testing.assert_allclose(dense[0], want, rtol=1e-6)


def test_callable_encoder_and_word2vec_are_deterministic():
    inter, _ = catalogue()
    fn = lambda texts: np.array([[len(t), t.count("a") + 1.0] for t in texts])  # noqa: E731
    model = ContentKNN(encoder=fn).fit(inter)
    raw = fn(model._documents(inter.item_metadata))
    np.testing.assert_allclose(model.item_vectors_, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-6)
    a = ContentKNN(encoder="word2vec", use_cache=False, encoder_options={"epochs": 3}).fit(inter).item_vectors_
    b = ContentKNN(encoder="word2vec", use_cache=False, encoder_options={"epochs": 3}).fit(inter).item_vectors_
    np.testing.assert_array_equal(a, b)


def test_word2vec_vectors_are_means_of_gensim_word_vectors():
    gensim_models = pytest.importorskip("gensim.models")
    from gensim.utils import simple_preprocess
    inter, _ = catalogue()
    model = ContentKNN(encoder="word2vec", use_cache=False, encoder_options={"epochs": 3, "vector_size": 8}).fit(inter)
    texts = model._documents(inter.item_metadata)
    tokens = [simple_preprocess(t) for t in texts]
    from recforge.models.content.encoders.word2vec import stable_hash
    wv = gensim_models.Word2Vec(tokens, vector_size=8, window=5, min_count=1, epochs=3, seed=0, sg=0, workers=1,
                                hashfxn=stable_hash).wv
    want = np.array([np.mean([wv[w] for w in t], axis=0) for t in tokens])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_vectors_, want, rtol=1e-5, atol=1e-6)


def test_bert_vectors_equal_sentence_transformers(tmp_path):
    minilm_folder()
    inter, _ = catalogue()
    model = ContentKNN(encoder="bert", cache_dir=str(tmp_path), encoder_options={"num_threads": 2}).fit(inter)
    texts = model._documents(inter.item_metadata)
    want = minilm_vectors(texts)
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_vectors_, want, rtol=1e-4, atol=1e-5)
    assert not model.cache_hit_
    again = ContentKNN(encoder="bert", cache_dir=str(tmp_path)).fit(inter)
    assert again.cache_hit_
    np.testing.assert_array_equal(again.item_vectors_, model.item_vectors_)


def test_cache_is_hit_on_a_second_fit_and_missed_on_new_texts(tmp_path):
    inter, meta = catalogue()
    opts = {"epochs": 2}
    first = ContentKNN(encoder="word2vec", cache_dir=str(tmp_path), encoder_options=opts).fit(inter)
    files = list((tmp_path / "embeddings").glob("*.npy"))
    assert not first.cache_hit_ and len(files) == 1
    second = ContentKNN(encoder="word2vec", cache_dir=str(tmp_path), encoder_options=opts).fit(inter)
    assert second.cache_hit_
    np.testing.assert_array_equal(first.item_vectors_, second.item_vectors_)
    inter.item_metadata = inter.item_metadata.assign(title=inter.item_metadata["title"] + " extra")
    third = ContentKNN(encoder="word2vec", cache_dir=str(tmp_path), encoder_options=opts).fit(inter)
    assert not third.cache_hit_ and len(list((tmp_path / "embeddings").glob("*.npy"))) == 2
    files[0].write_bytes(b"garbage")              # a damaged entry is ignored and rewritten
    fourth = ContentKNN(encoder="word2vec", cache_dir=str(tmp_path), encoder_options=opts).fit(catalogue()[0])
    assert not fourth.cache_hit_
    np.testing.assert_array_equal(fourth.item_vectors_, first.item_vectors_)


def test_cache_dir_defaults_to_the_environment(tmp_path, monkeypatch):
    from recforge.models.content.cache import EmbeddingCache
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path))
    assert EmbeddingCache().folder == tmp_path / "embeddings"


# ---------------------------------------------------------------------- cold start
def test_items_nobody_saw_are_recommendable_and_add_items_works():
    inter, meta = catalogue()
    model = ContentKNN(fields=("title", "genres", "tags")).fit(inter)
    items, _ = model.recommend([0], n=3, ids=True)
    assert set(items[0]) <= {103, 104, 105}, "unseen sci-fi items (104 and 105 were never interacted with)"
    new = pd.DataFrame({"title": ["Robot Alien Space Odyssey", "Paris Love Wedding"], "genres": ["Sci-Fi", "Romance"],
                        "tags": ["robots aliens", "paris"]}, index=[200, 201])
    model.add_items(new)
    assert model.n_items_ == 14 and model.user_items_.shape == (6, 14)
    sci_fi_user, romance_user = model.user_ids_.codes([0, 3])
    top_sci, _ = model.recommend([sci_fi_user], n=1, ids=True)
    top_rom, _ = model.recommend([romance_user], n=1, ids=True)
    assert top_sci[0, 0] == 200 and top_rom[0, 0] == 201
    with pytest.raises(ValueError, match="already"):
        model.add_items(new)


def test_explain_contributions_sum_to_the_score():
    inter, _ = catalogue()
    model = ContentKNN().fit(inter)
    items, scores = model.recommend([0, 3], n=3)
    for row, user in enumerate([0, 3]):
        e = model.explain(user, items[row, 0])
        assert e.score == pytest.approx(float(scores[row, 0]), rel=1e-5)
        assert e.item_contributions.sum() == pytest.approx(e.score, rel=1e-9)
        assert e.feature_contributions.sum() == pytest.approx(e.score, rel=1e-9)
        assert set(e.items) <= set(inter.to_csr()[user].indices)
    e = model.explain(0, 3)                       # "Space Station Alien" for a sci-fi user
    words = [w for w, _ in e.top_features(3)]
    assert {"space", "alien", "sci"} & set(words)
    dense = ContentKNN(encoder="word2vec", use_cache=False, encoder_options={"epochs": 2}).fit(inter)
    e = dense.explain(0, 5)
    assert e.features is None and e.item_contributions.sum() == pytest.approx(float(dense.predict([0], [5])[0]))


# ---------------------------------------------------------------------- input errors
def test_requires_item_metadata():
    with pytest.raises(MissingInputError, match="item metadata"):
        ContentKNN().fit(sp.random(5, 5, density=0.5, format="csr"))


def test_bad_parameters_are_named():
    inter, _ = catalogue()
    for kwargs, word in (({"encoder": "nope"}, "encoder"), ({"profile": "x"}, "profile"), ({"k": 0}, "k"),
                         ({"half_life": 0}, "half_life"), ({"fields": "title"}, "fields")):
        with pytest.raises(ValueError, match=word):
            ContentKNN(**kwargs).fit(inter)


def test_import_stays_light_and_missing_extra_is_named():
    code = ("import sys, recforge.models.content, recforge.models.hybrid; "
            "bad = [m for m in ('sklearn', 'gensim', 'sentence_transformers', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
    code = ("import sys; sys.modules['gensim'] = None; sys.modules['gensim.models'] = None\n"
            "from recforge.models.content.encoders import make_encoder\n"
            "try:\n    make_encoder('word2vec').fit(['a b'])\nexcept ImportError as e:\n"
            "    assert 'pip install \"recforge[text]\"' in str(e), e\nelse:\n    raise SystemExit('no error')")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- contract
class TestContentKNNTfidfContract(RecommenderContract):
    def make_model(self):
        return ContentKNN(fields=("title", "genres"))

    def fit_input(self, data):
        return with_metadata(data)


class TestContentKNNNeighboursContract(RecommenderContract):
    def make_model(self):
        return ContentKNN(encoder="attributes", fields=("title", "genres"), k=5)

    def fit_input(self, data):
        return with_metadata(data)
