"""The estimator contract every recforge model honours, checked once (implicit's
recommender_base_test style): each model's test file subclasses :class:`RecommenderContract`
and adds only what is specific to it.

References here are independent of the code under test: a per-user loop that ranks every
candidate item by ``predict`` (itself checked against brute-force formulas in the model files),
plain set logic for exclusion and padding, and hand-edited artifact files.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import recforge
from recforge.data import Interactions
from recforge.models import ArtifactError, ArtifactVersionError, NotFittedError, registry
from recforge.models import base as base_module


def random_user_items(n_users=40, n_items=30, density=0.2, seed=0, ratings=False):
    """A seeded users x items CSR with continuous positive weights (ties between scores are
    then unlikely), or integer ratings 1..5."""
    rng = np.random.default_rng(seed)
    R = sp.random(n_users, n_items, density=density, random_state=rng, format="csr", dtype=np.float64)
    R.data = rng.integers(1, 6, R.nnz).astype(np.float64) if ratings else 0.5 + rng.random(R.nnz)
    return R.astype(np.float32)


def ranked_by_predict(model, user, candidates, n):
    """Reference: the candidates sorted by model.predict (desc), ties by smaller code, first n."""
    candidates = np.asarray(sorted(candidates), dtype=np.int64)
    scores = model.predict(np.full(candidates.size, user), candidates)
    order = sorted(range(candidates.size), key=lambda j: (-scores[j], candidates[j]))[:n]
    return candidates[order], scores[order]


class RecommenderContract:
    """Subclasses define ``make_model()`` (an unfitted model) and may override the class flags."""

    #: recommend(history=...) is supported for users the model never saw
    supports_history = True
    #: the model's predict() is the score recommend() ranks by
    predict_ranks = True

    def make_model(self):
        raise NotImplementedError

    def train_matrix(self):
        return random_user_items()

    def fit_input(self, data):
        """What ``fit`` receives for ``data`` (the users x items CSR, or an Interactions made from
        it); models that require item metadata or timestamps attach them here."""
        return data

    @pytest.fixture
    def R(self):
        return self.train_matrix()

    @pytest.fixture
    def fitted(self, R):
        return self.make_model().fit(self.fit_input(R))

    # ----------------------------------------------------------------- estimator shape
    def test_constructor_only_stores_parameters(self):
        model = self.make_model()
        params = model.get_params()
        assert all(getattr(model, name) == value for name, value in params.items())
        assert not [a for a in vars(model) if a.endswith("_")], "no learned state before fit"
        assert type(model).__name__ in repr(model)

    def test_fit_returns_self_and_learns_state(self, R):
        model = self.make_model()
        assert model.fit(self.fit_input(R)) is model
        assert (model.n_users_, model.n_items_) == R.shape

    def test_registered(self):
        model = self.make_model()
        assert registry.get(type(model).__name__) is type(model)
        assert type(model).__name__ in registry.available()

    def test_unfitted_model_says_so(self):
        with pytest.raises(NotFittedError, match="fit"):
            self.make_model().recommend([0])

    def test_accepts_interactions_like_csr(self, R):
        coo = R.tocoo()
        inter = Interactions(coo.row, coo.col, coo.data)
        a = self.make_model().fit(self.fit_input(R)).recommend(np.arange(R.shape[0]), n=5)
        b = self.make_model().fit(self.fit_input(inter)).recommend(np.arange(R.shape[0]), n=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)

    # ----------------------------------------------------------------- recommend
    def test_recommend_equals_ranking_by_predict(self, fitted, R):
        if not self.predict_ranks:
            pytest.skip("predict is not the ranking score for this model")
        users = np.arange(R.shape[0])
        items, scores = fitted.recommend(users, n=6)
        assert items.shape == scores.shape == (users.size, 6)
        for u in users:
            seen = set(R[u].indices)
            candidates = [i for i in range(R.shape[1]) if i not in seen]
            want_items, want_scores = ranked_by_predict(fitted, u, candidates, 6)
            np.testing.assert_allclose(scores[u, :want_items.size], want_scores, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(items[u, :want_items.size], want_items)

    def test_exactly_n_distinct_unseen_items(self, fitted, R):
        items, scores = fitted.recommend(np.arange(R.shape[0]), n=10)
        for u in range(R.shape[0]):
            row = items[u]
            assert len(set(row)) == 10 and row.min() >= 0, "n candidates remain, so n distinct items"
            assert not set(row) & set(R[u].indices)
            assert np.all(np.diff(scores[u].astype(np.float64)) <= 1e-6), "best first"

    def test_filter_items_never_recommended(self, fitted, R):
        banned = np.array([0, 3, 7, 11])
        items, _ = fitted.recommend(np.arange(R.shape[0]), n=8, filter_items=banned)
        assert not np.isin(items, banned).any()
        assert (items >= 0).all()

    def test_padding_when_fewer_candidates_than_n(self, R):
        R = R.tolil()
        R[0, 2:] = 1.0                      # user 0 has seen every item but 0 and 1
        R[0, :2] = 0.0
        R = R.tocsr()
        R.eliminate_zeros()
        model = self.make_model().fit(self.fit_input(R))
        items, scores = model.recommend([0], n=5)
        assert sorted(items[0, :2]) == [0, 1]
        assert list(items[0, 2:]) == [-1, -1, -1]
        assert np.all(np.isneginf(scores[0, 2:])) and np.all(np.isfinite(scores[0, :2]))

    def test_exclude_seen_false_may_return_seen_items(self, fitted, R):
        items, _ = fitted.recommend(np.arange(R.shape[0]), n=R.shape[1], exclude_seen=False)
        for u in range(R.shape[0]):
            assert sorted(items[u]) == list(range(R.shape[1])), "every item, seen ones included"

    def test_chunking_does_not_change_results(self, fitted, R, monkeypatch):
        users = np.arange(R.shape[0])
        whole = fitted.recommend(users, n=5)
        monkeypatch.setattr(base_module, "CHUNK_USERS", 7)
        chunked = fitted.recommend(users, n=5)
        np.testing.assert_array_equal(whole[0], chunked[0])
        np.testing.assert_array_equal(whole[1], chunked[1])

    def test_original_ids(self, R):
        coo = R.tocoo()
        uids = np.array([f"u{k}" for k in range(R.shape[0])], dtype=object)
        iids = np.array([f"item-{k}" for k in range(R.shape[1])], dtype=object)
        inter = Interactions.from_arrays(uids[coo.row], iids[coo.col], coo.data)
        model = self.make_model().fit(self.fit_input(inter))
        users = inter.user_ids.to_numpy()[:5]
        by_id, s1 = model.recommend(users, n=4, ids=True)
        codes, s2 = model.recommend(inter.user_ids.codes(users), n=4)
        np.testing.assert_array_equal(by_id, inter.item_ids.to_numpy()[codes])
        np.testing.assert_array_equal(s1, s2)
        banned = inter.item_ids.to_numpy()[codes[:, 0]]
        again, _ = model.recommend(users, n=4, ids=True, filter_items=banned)
        assert not np.isin(again, banned).any()

    def test_bad_arguments_are_named(self, fitted, R):
        with pytest.raises(ValueError, match="n must be >= 1"):
            fitted.recommend([0], n=0)
        with pytest.raises(ValueError, match="users"):
            fitted.recommend([R.shape[0] + 5])
        with pytest.raises(TypeError, match="users"):
            fitted.recommend([0.5])
        with pytest.raises(ValueError, match="filter_items"):
            fitted.recommend([0], filter_items=[R.shape[1]])
        with pytest.raises(ValueError, match="same length"):
            fitted.predict([0, 1], [0])
        with pytest.raises(ValueError, match="items"):
            fitted.predict([0], [R.shape[1]])

    def test_unknown_ids_and_codes_are_named(self, R):
        coo = R.tocoo()
        inter = Interactions.from_arrays(np.char.add("u", coo.row.astype(str)).astype(object),
                                         np.char.add("i", coo.col.astype(str)).astype(object), coo.data)
        model = self.make_model().fit(self.fit_input(inter))
        with pytest.raises(KeyError, match="users.*'nobody'"):
            model.recommend(["u1", "nobody"], ids=True)
        with pytest.raises(KeyError, match="items.*'no-item'"):
            model.predict(["u1"], ["no-item"], ids=True)
        with pytest.raises(KeyError, match="filter_items.*'gone'"):
            model.recommend(["u1"], ids=True, filter_items=["gone"])
        with pytest.raises(ValueError, match=rf"items holds codes outside 0..{R.shape[1] - 1} \(first -3\)"):
            model.predict([0], [-3])
        with pytest.raises(ValueError, match=rf"users holds codes outside 0..{R.shape[0] - 1} \(first {R.shape[0]}\)"):
            model.recommend([0, R.shape[0]])

    # ----------------------------------------------------------------- history
    def test_history_equal_to_stored_rows_changes_nothing(self, fitted, R):
        if not self.supports_history:
            pytest.skip("no history= for this model")
        users = np.arange(R.shape[0])
        plain = fitted.recommend(users, n=5)
        again = fitted.recommend(users, n=5, history=R)
        np.testing.assert_array_equal(plain[0], again[0])
        np.testing.assert_allclose(plain[1], again[1], rtol=1e-5)

    def test_history_for_new_users(self, fitted, R):
        if not self.supports_history:
            pytest.skip("no history= for this model")
        history = R[[3, 5]]
        items, scores = fitted.recommend([-1, -1], n=5, history=history)
        assert items.shape == (2, 5)
        for row, h in zip(items, (R[3], R[5])):
            assert not set(row) & set(h.indices), "the history's items are excluded"
            assert (row >= 0).all()
        with pytest.raises(ValueError, match="history"):
            fitted.recommend([0, 1], n=5, history=R[:3])

    # ----------------------------------------------------------------- persistence
    def test_save_load_gives_identical_results(self, fitted, R, tmp_path):
        fitted.save(tmp_path / "m")
        loaded = recforge.load(tmp_path / "m")
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        users = np.arange(R.shape[0])
        for a, b in zip(fitted.recommend(users, n=5), loaded.recommend(users, n=5)):
            np.testing.assert_array_equal(a, b)
        u, i = np.nonzero(np.ones(R.shape, dtype=bool))
        np.testing.assert_array_equal(fitted.predict(u[:200], i[:200]), loaded.predict(u[:200], i[:200]))

    def test_save_load_keeps_string_ids(self, R, tmp_path):
        coo = R.tocoo()
        inter = Interactions.from_arrays(np.char.add("u", coo.row.astype(str)).astype(object),
                                         np.char.add("i", coo.col.astype(str)).astype(object), coo.data)
        model = self.make_model().fit(self.fit_input(inter))
        model.save(tmp_path / "m")
        loaded = recforge.load(tmp_path / "m")
        users = inter.user_ids.to_numpy()[:4]
        np.testing.assert_array_equal(model.recommend(users, n=3, ids=True)[0],
                                      loaded.recommend(users, n=3, ids=True)[0])

    def test_tampered_array_is_refused(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        with np.load(folder / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["user_items.data"] = arrays["user_items.data"] + 1
        np.savez(folder / "arrays.npz", **arrays)
        with pytest.raises(ArtifactError, match="checksum"):
            recforge.load(folder)

    def test_truncated_arrays_are_refused(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        data = (folder / "arrays.npz").read_bytes()
        (folder / "arrays.npz").write_bytes(data[: len(data) // 2])
        with pytest.raises(ArtifactError, match="corrupt or truncated"):
            recforge.load(folder)

    def test_truncated_json_is_refused(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        text = (folder / "model.json").read_text()
        (folder / "model.json").write_text(text[: len(text) // 2])
        with pytest.raises(ArtifactError, match="JSON"):
            recforge.load(folder)

    def test_newer_format_version_is_refused(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        doc = json.loads((folder / "model.json").read_text())
        doc["format_version"] += 1
        (folder / "model.json").write_text(json.dumps(doc))
        with pytest.raises(ArtifactVersionError, match="upgrade recforge"):
            recforge.load(folder)

    def test_older_format_version_is_refused(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        doc = json.loads((folder / "model.json").read_text())
        doc["format_version"] = 0
        (folder / "model.json").write_text(json.dumps(doc))
        with pytest.raises(ArtifactVersionError, match="format version 0.*reads format versions 1"):
            recforge.load(folder)

    def test_unknown_model_class_is_refused(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        doc = json.loads((folder / "model.json").read_text())
        doc["model"] = "os.system"
        (folder / "model.json").write_text(json.dumps(doc))
        with pytest.raises(ArtifactError, match="unknown model"):
            recforge.load(folder)

    def test_pickled_arrays_are_never_loaded(self, fitted, tmp_path):
        folder = tmp_path / "m"
        fitted.save(folder)
        doc = json.loads((folder / "model.json").read_text())
        with np.load(folder / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["user_ids"] = np.array([{"payload": 1}] * arrays["user_ids"].size, dtype=object)
        np.savez(folder / "arrays.npz", **arrays)   # an object array: stored with pickle
        (folder / "model.json").write_text(json.dumps(doc))
        with pytest.raises(ArtifactError):
            recforge.load(folder)
        with zipfile.ZipFile(folder / "arrays.npz") as zf:
            assert "user_ids.npy" in zf.namelist()

    def test_missing_artifact_is_named(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="model.json"):
            recforge.load(tmp_path / "nothing")

    # ----------------------------------------------------------------- evaluation
    def test_evaluate_runs_on_the_model(self, R):
        pytest.importorskip("pandas")
        rng = np.random.default_rng(1)
        coo = R.tocoo()
        held = rng.random(coo.nnz) < 0.2
        train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=R.shape)
        test = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=R.shape)
        model = self.make_model().fit(self.fit_input(train))
        out = recforge.evaluate(model, train, test, metrics=["ndcg@10", "recall@20"], batch_size=9)
        assert np.all(np.isfinite(out["value"])) and np.all((out["value"] >= 0) & (out["value"] <= 1))


def test_import_recforge_stays_light():
    import subprocess
    import sys
    code = ("import sys, recforge; assert 'recforge.models' not in sys.modules; "
            "m = recforge.load; assert 'recforge.models' in sys.modules; "
            "assert 'pandas' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_lists_the_models():
    assert {"MostPopular", "Random", "ItemKNN", "UserKNN"} <= set(registry.available())
    with pytest.raises(KeyError, match="available"):
        registry.get("NoSuchModel")
    with pytest.raises(TypeError):
        registry.register(dict)


def test_path_type_is_accepted(tmp_path):
    from recforge.models import MostPopular
    model = MostPopular().fit(random_user_items())
    model.save(str(tmp_path / "m"))
    assert isinstance(recforge.load(Path(tmp_path / "m")), MostPopular)
