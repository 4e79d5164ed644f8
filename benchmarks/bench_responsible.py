"""Responsible recommendation on real data: the privacy-utility curve of the DP ItemKNN, and the
NDCG / diversity / calibration trade-offs of the re-rankers.

Protocol: per-user random 80/20 split (seed 0), full ranking, train items excluded, NDCG@10.

* Privacy: ItemKNN (cosine, k=50) with ``privacy=DP(epsilon)`` for epsilon in
  {0.1, 0.5, 1, 2, 5, 10, inf}, 3 noise seeds each (mean reported), beside the non-private and the
  private (same epsilon) MostPopular. Gowalla (``--datasets gowalla``; the LightGCN paper's own
  train/test split, itself a per-user ~80/20 split): the private co-occurrence is computed in
  blocks of item rows, never 40,981^2 at once.
* DP-SGD (``--dpsgd``, default ML-100K): BPRMF trained with user-level DP-SGD through Opacus
  (``privacy=DPSGD(epsilon)``, :data:`BPRMF_PARAMS`, :data:`DPSGD_PARAMS`) on the same epsilons,
  with the accountant's epsilon printed, beside the non-private BPRMF.
* Re-ranking: ItemKNN's top-100 re-ranked to top-10 with MMR over 64-d truncated-SVD item
  vectors and with Steck calibration over genres, lambda in {0, 0.1, ..., 1}: NDCG@10 against
  intra-list diversity (mean pairwise cosine distance of the same vectors) and against the
  genre KL divergence; re-ranking throughput (users/s over the whole user base).

    python benchmarks/bench_responsible.py [--datasets ml-100k ml-latest-small gowalla] [--seeds 3]
        [--no-rerank] [--dpsgd ml-100k] [--dpsgd-seeds 1] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: BPRMF for the DP-SGD curve (batch_size: expected users per step under DP-SGD)
BPRMF_PARAMS = dict(dim=32, epochs=20, lr=0.01, batch_size=256, num_threads=1, progress=False)
DPSGD_PARAMS = dict(max_grad_norm=0.02, max_items_per_user=100)
EPSILONS = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, math.inf]
LAMBDAS = [round(0.1 * k, 1) for k in range(11)]
FINE_LAMBDAS = [0.62, 0.64, 0.66, 0.68]      # between the grid points where the trade-off turns


def data_dir() -> Path:
    env = os.environ.get("RECFORGE_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load(name: str):
    from recforge import datasets
    from recforge.data import split

    if name == "gowalla":                       # the LightGCN paper's own per-user ~80/20 split
        parts = datasets.lightgcn("gowalla", data_dir=data_dir(), download=False)
        return None, parts.train, parts.test
    inter = datasets.movielens("100k" if name == "ml-100k" else "latest-small", data_dir=data_dir())
    parts = split.random(inter, 0.2, by_user=True, seed=0)
    return inter, parts.train, parts.test


def ndcg(model, train, test, users=None):
    import recforge
    return float(recforge.evaluate(model, train, test, ["ndcg@10"]).loc["ndcg@10", "value"])


def ndcg_of_lists(lists: np.ndarray, users: np.ndarray, test_csr: sp.csr_matrix) -> float:
    """Mean NDCG@10 of given lists over users with held-out items (binary gains)."""
    disc = 1.0 / np.log2(np.arange(2, 12))
    total, count = 0.0, 0
    for row, u in zip(lists, users):
        rel = set(test_csr[u].indices)
        if not rel:
            continue
        dcg = sum(disc[r] for r, i in enumerate(row[:10]) if i in rel)
        ideal = disc[: min(10, len(rel))].sum()
        total += dcg / ideal
        count += 1
    return total / count


def privacy_curve(name, train, test, seeds=3, epsilons=EPSILONS):
    from recforge.models import ItemKNN, MostPopular
    from recforge.privacy import DP

    started = time.perf_counter()
    rows = [("MostPopular (non-private)", math.inf, ndcg(MostPopular().fit(train), train, test), 0.0)]
    print(f"  {rows[0][0]:32} {rows[0][2]:.4f}", flush=True)
    for eps in epsilons:
        knn, pop, sig = [], [], 0.0
        for seed in range(seeds if math.isfinite(eps) else 1):
            dp = DP(epsilon=eps, delta=1e-6, max_items_per_user=200, seed=seed)
            m = ItemKNN(k=50, progress=False, privacy=dp).fit(train)
            knn.append(ndcg(m, train, test))
            pop.append(ndcg(MostPopular(privacy=dp).fit(train), train, test))
            sig = getattr(m, "privacy_sigma_", 0.0)
        rows.append((f"ItemKNN DP eps={eps}", eps, float(np.mean(knn)), sig))
        rows.append((f"MostPopular DP eps={eps}", eps, float(np.mean(pop)), sig))
        for label, _, value, sigma in rows[-2:]:
            print(f"  {label:32} {value:.4f}   sigma={sigma:.3g}   ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def dpsgd_curve(name, train, test, seeds=1, epsilons=EPSILONS):
    """BPRMF trained with user-level DP-SGD (Opacus) per epsilon, and without privacy."""
    import warnings

    from recforge.models import BPRMF
    from recforge.privacy import DPSGD

    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    started = time.perf_counter()
    plain = ndcg(BPRMF(**BPRMF_PARAMS).fit(train), train, test)
    rows = [("BPRMF (non-private)", math.inf, plain, 0.0, 0.0)]
    print(f"  {rows[0][0]:32} {plain:.4f}", flush=True)
    for eps in epsilons:
        values, spent, sigma = [], 0.0, 0.0
        for seed in range(seeds):
            dp = DPSGD(epsilon=eps, delta=1e-6, seed=seed, **DPSGD_PARAMS)
            m = BPRMF(**{**BPRMF_PARAMS, "seed": seed}, privacy=dp).fit(train)
            values.append(ndcg(m, train, test))
            spent, sigma = m.privacy_epsilon_, m.privacy_noise_multiplier_
        rows.append((f"BPRMF DP-SGD eps={eps}", eps, float(np.mean(values)), sigma, spent))
        print(f"  {rows[-1][0]:32} {rows[-1][2]:.4f}   noise multiplier={sigma:.3g}  accountant eps={spent:.3f}  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def rerank_curves(name, inter, train, test):
    from sklearn.decomposition import TruncatedSVD

    from recforge.models import ItemKNN
    from recforge.rerank import calibrate, category_distribution, kl_divergence, mmr

    R = train.to_csr()
    test_csr = test.to_csr(shape=R.shape)
    users = np.flatnonzero(np.diff(test_csr.indptr))
    model = ItemKNN(k=50, progress=False).fit(train)
    items, scores = model.recommend(users, 100)
    svd = TruncatedSVD(64, random_state=0).fit(R)
    V = svd.components_.T * svd.singular_values_              # item factors Q = V Sigma
    Vn = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    genres = inter.item_metadata["genres"].fillna("").str.split("|")
    vocab = sorted({g for gs in genres for g in gs if g})
    C = np.zeros((R.shape[1], len(vocab)))
    for i, gs in enumerate(genres):
        for g in gs:
            if g:
                C[i, vocab.index(g)] = 1.0
    P = category_distribution(R[users], C)
    Cn = C / np.maximum(C.sum(axis=1, keepdims=True), 1e-300)

    def ild(lists):
        U = Vn[lists]
        G = np.einsum("mad,mbd->mab", U, U)
        k = lists.shape[1]
        return float(((1 - G).sum(axis=(1, 2)) / (k * (k - 1))).mean())

    out = {"mmr": [], "calibration": []}
    for lam in sorted(LAMBDAS + FINE_LAMBDAS):
        t = time.perf_counter()
        lists, _ = mmr(items, scores, V, lambda_=1 - lam, n=10)        # lam = weight of diversity
        mmr_rate = users.size / (time.perf_counter() - t)
        out["mmr"].append((lam, ndcg_of_lists(lists, users, test_csr), ild(lists), mmr_rate))
        if lam in FINE_LAMBDAS:
            continue
        t = time.perf_counter()
        lists, _ = calibrate(items, scores, C, P, lambda_=lam, n=10)
        cal_rate = users.size / (time.perf_counter() - t)
        kl = float(kl_divergence(P, Cn[lists].mean(axis=1)).mean())
        out["calibration"].append((lam, ndcg_of_lists(lists, users, test_csr), kl, cal_rate))
    return out


def plot(results, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name, res in results.items():
        curve = [(e, v) for label, e, v, _ in res["privacy"] if label.startswith("ItemKNN")]
        xs = [e if math.isfinite(e) else 20.0 for e, _ in curve]
        axes[0].plot(xs, [v for _, v in curve], "o-", label=f"{name} DP ItemKNN")
        pop = [v for label, _, v, _ in res["privacy"] if label == "MostPopular (non-private)"][0]
        axes[0].axhline(pop, linestyle="--", color=axes[0].lines[-1].get_color(), label=f"{name} MostPopular")
        if "dpsgd" in res:
            curve = [(e, v) for label, e, v, _, _ in res["dpsgd"] if label.startswith("BPRMF DP")]
            axes[0].plot([e if math.isfinite(e) else 20.0 for e, _ in curve], [v for _, v in curve], "s:",
                         label=f"{name} DP-SGD BPRMF")
        if "rerank" not in res:
            continue
        axes[1].plot([r[2] for r in res["rerank"]["mmr"]], [r[1] for r in res["rerank"]["mmr"]], "o-", label=name)
        axes[2].plot([r[2] for r in res["rerank"]["calibration"]], [r[1] for r in res["rerank"]["calibration"]],
                     "o-", label=name)
    axes[0].set_xscale("log")
    axes[0].set(xlabel="epsilon (inf plotted at 20)", ylabel="NDCG@10", title="privacy-utility")
    axes[1].set(xlabel="intra-list diversity", ylabel="NDCG@10", title="MMR, lambda 0..1")
    axes[2].set(xlabel="genre KL(p || q)", ylabel="NDCG@10", title="calibration, lambda 0..1")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "responsible.png", dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epsilons", nargs="+", type=float, default=EPSILONS, help="the DP curves'")
    parser.add_argument("--no-rerank", action="store_true", help="the privacy curves only")
    parser.add_argument("--dpsgd", nargs="*", default=["ml-100k"], help="datasets with the DP-SGD BPRMF curve")
    parser.add_argument("--dpsgd-seeds", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.datasets:
        inter, train, test = load(name)
        privacy = privacy_curve(name, train, test, args.seeds, args.epsilons)
        pop = privacy[0][2]
        split_name = "the LightGCN paper's train/test split" if name == "gowalla" else "per-user 80/20 split seed 0"
        print(f"\n== {name}: NDCG@10, {split_name} (DP rows: mean of {args.seeds} noise seeds)")
        for label, eps, value, sigma in privacy:
            print(f"  {label:32} {value:.4f}   sigma={sigma:.3g}")
        beats = [eps for label, eps, value, _ in privacy if label.startswith("ItemKNN") and value > pop]
        finite = [e for e in beats if math.isfinite(e)]
        print(f"  smallest epsilon where DP ItemKNN beats non-private MostPopular ({pop:.4f}): "
              f"{min(finite) if finite else 'none'}")
        results[name] = {"privacy": privacy}
        if name in args.dpsgd:
            print(f"  DP-SGD BPRMF {BPRMF_PARAMS} {DPSGD_PARAMS} (mean of {args.dpsgd_seeds} seeds):", flush=True)
            results[name]["dpsgd"] = dpsgd_curve(name, train, test, args.dpsgd_seeds, args.epsilons)
            beats = [e for label, e, value, _, _ in results[name]["dpsgd"]
                     if label.startswith("BPRMF DP") and math.isfinite(e) and value > pop]
            print(f"  smallest epsilon where DP-SGD BPRMF beats non-private MostPopular ({pop:.4f}): "
                  f"{min(beats) if beats else 'none'}")
        (out / f"responsible_{name}.json").write_text(json.dumps(results[name], default=str, indent=1))
        if inter is None or args.no_rerank:             # Gowalla has no genres to calibrate to
            continue
        rerank = rerank_curves(name, inter, train, test)
        base_ndcg, base_ild = rerank["mmr"][0][1], rerank["mmr"][0][2]
        print("  MMR (lambda = diversity weight): lambda, NDCG@10, ILD, users/s")
        for lam, v, d, rate in rerank["mmr"]:
            print(f"    {lam:.2f}  {v:.4f}  {d:.4f} ({(d / base_ild - 1) * 100:+.1f}% ILD, "
                  f"{(v / base_ndcg - 1) * 100:+.1f}% NDCG)  {rate:,.0f}")
        print("  calibration: lambda, NDCG@10, KL, users/s")
        for lam, v, kl, rate in rerank["calibration"]:
            print(f"    {lam:.1f}  {v:.4f}  {kl:.4f}  {rate:,.0f}")
        ok = [(lam, d / base_ild - 1, 1 - v / base_ndcg) for lam, v, d, _ in rerank["mmr"]
              if d >= 1.2 * base_ild and v >= 0.95 * base_ndcg]
        print(f"  MMR settings with ILD +20% for <= 5% NDCG loss: {ok if ok else 'none'}")
        results[name]["rerank"] = rerank
    plot(results, out)
    print(f"plot: {out / 'responsible.png'}")


if __name__ == "__main__":
    main()
