"""MostPopular and Random: the contract, plus their own definitions checked by hand."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recforge.models import MostPopular, Random

from test_models_contract import RecommenderContract, random_user_items


class TestMostPopular(RecommenderContract):
    def make_model(self):
        return MostPopular()

    def test_popularity_is_the_number_of_users(self):
        # items 0..3; users: {0, 1}, {1}, {1, 2}, {3} -> item 1 by 3 users, items 0, 2, 3 by 1 each
        R = sp.csr_matrix(np.array([[5, 1, 0, 0], [0, 2, 0, 0], [0, 1, 4, 0], [0, 0, 0, 9]], dtype=float))
        model = MostPopular().fit(R)
        np.testing.assert_array_equal(model.predict([0, 0, 0, 0], [0, 1, 2, 3]), [1, 3, 1, 1])
        items, scores = model.recommend([3], n=3)      # user 3 has seen item 3
        np.testing.assert_array_equal(items[0], [1, 0, 2])  # ties (0, 2) by smaller code
        np.testing.assert_array_equal(scores[0], [3, 1, 1])
        weighted = MostPopular(weighted=True).fit(R)  # sums: 5, 4, 4, 9
        np.testing.assert_array_equal(weighted.recommend([1], n=4)[0][0], [3, 0, 2, -1])


class TestRandom(RecommenderContract):
    def make_model(self):
        return Random(seed=3)

    def test_seed_fixes_the_scores_and_users_differ(self):
        R = random_user_items()
        a = Random(seed=3).fit(R).recommend(np.arange(10), n=5)[0]
        b = Random(seed=3).fit(R).recommend(np.arange(10), n=5)[0]
        c = Random(seed=4).fit(R).recommend(np.arange(10), n=5)[0]
        np.testing.assert_array_equal(a, b)
        assert (a != c).any()
        assert len({tuple(row) for row in a}) > 1

    def test_scores_look_uniform(self):
        model = Random(seed=0).fit(sp.csr_matrix((200, 500)))
        u, i = np.divmod(np.arange(100_000), 500)
        s = model.predict(u, i)
        assert s.min() >= 0 and s.max() < 1
        counts = np.histogram(s, bins=10, range=(0, 1))[0]
        expected = s.size / 10
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < 27.9  # 99.9% quantile of chi-square with 9 degrees of freedom
