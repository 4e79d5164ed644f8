"""LightGCN training step and full-ranking evaluation: recforge against PyTorch Geometric.

Same process, same thread count, same inputs: the same layer-0 embeddings and the same
(user, positive, negative) batches (recforge's sampler; sampling is timed separately for
recforge and not at all for PyG). PyG's ``LightGCN`` gets the binary bipartite adjacency as a
torch sparse CSR tensor (its fast path) and runs the step of its example: ``get_embedding`` over
the whole graph, BPR via ``recommendation_loss``, backward, Adam. recforge runs the step of
``recforge.models.LightGCN`` (L - 1 full sparse products + the last layer at the batch's rows,
one fused propagation for the gradient). Before timing, both compute the final embeddings of
the same layer-0 embeddings, which are checked to agree.

Seconds per epoch = median seconds per step (incl. the optimiser) x steps per epoch (training
interactions / batch size); recforge's sampling per step is added to its figure. Evaluation:
top-20 of every test user with the train items masked — recforge ``LightGCN.recommend``
(dense_topk, exclusion fused) against torch (dense scores per user block, mask, ``topk``).

    python benchmarks/bench_lightgcn.py --threads 2                 # ML-100K and Gowalla
    python benchmarks/bench_lightgcn.py --threads 2 --datasets ml100k --steps 5
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # both libraries alike: no spinning on a shared machine

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from harness import data_root  # noqa: E402

DATASETS = {"ml100k": 1024, "gowalla": 2048}  # name -> batch size of its reference protocol


def load(name: str):
    import recforge
    from recforge.data import split

    if name == "ml100k":
        ratings = recforge.datasets.movielens("100k", data_dir=data_root(), metadata=False)
        train, test = split.random(ratings, frac=0.25, by_user=True, seed=42)
    else:
        train, test = recforge.datasets.lightgcn("gowalla", data_dir=data_root())
    R = train.to_csr(values=False).astype(np.float32)
    T = test.to_csr(values=False, shape=R.shape)
    return sp.csr_matrix((np.ones(R.nnz, np.float32), R.indices, R.indptr), shape=R.shape), T


def bipartite_csr(R: sp.csr_matrix):
    import torch

    U, I = R.shape
    B = sp.bmat([[None, R], [R.T, None]], format="csr").astype(np.float32)
    B.sort_indices()
    return torch.sparse_csr_tensor(torch.from_numpy(B.indptr.astype(np.int64)),
                                   torch.from_numpy(B.indices.astype(np.int64)), torch.from_numpy(B.data),
                                   size=B.shape)


def timed_steps(step, batches, steps: int) -> list[float]:
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        step(batches[k % len(batches)])
        if k:  # the first is a warm-up
            times.append(time.perf_counter() - t0)
    return times


def bench_training(name: str, R: sp.csr_matrix, threads: int, steps: int) -> dict:
    import torch
    from torch_geometric.nn.models import LightGCN as PygLightGCN

    from recforge.models.graph._trainer import BPRGraphProblem
    from recforge.torch.timing import SectionTimer

    batch_size, dim, layers = DATASETS[name], 64, 3
    U, I = R.shape
    timer = SectionTimer()
    ours = BPRGraphProblem(R, dim=dim, layers=layers, reg=1e-4, batch_size=batch_size, negatives=1, loss="bpr",
                           sampling="user", seed=0, num_threads=threads, device=torch.device("cpu"), timer=timer)
    peer = PygLightGCN(U + I, dim, layers)
    with torch.no_grad():
        peer.embedding.weight.copy_(ours.embedding)
    adjacency = bipartite_csr(R)

    with torch.no_grad():  # the same maths: final embeddings agree
        theirs = peer.get_embedding(adjacency).numpy()
    mine = ours.final_embeddings()
    error = float(np.abs(mine - theirs).max() / np.abs(theirs).max())
    assert error < 1e-5, f"final embeddings differ: relative {error:.2e}"

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    batches = []
    for batch in ours.epoch_batches(0, rng):
        batches.append(tuple(torch.from_numpy(a) for a in batch))
        if len(batches) == steps + 1:
            break
    sample_per_step = (time.perf_counter() - t0) / len(batches)

    opt_ours = torch.optim.Adam(ours.module.parameters(), lr=1e-3)
    opt_peer = torch.optim.Adam(peer.parameters(), lr=1e-3)

    def step_ours(batch):
        opt_ours.zero_grad(set_to_none=True)
        ours.step(batch).backward()
        opt_ours.step()

    def step_peer(batch):
        rows, inverse, nodes = batch
        b = inverse.numel() // 3
        u, i, j = nodes[:b], nodes[b:2 * b], nodes[2 * b:]
        opt_peer.zero_grad(set_to_none=True)
        label_index = torch.stack([torch.cat([u, u]), torch.cat([i, j])])
        pos, neg = peer(adjacency, label_index).chunk(2)
        peer.recommendation_loss(pos, neg, node_id=torch.cat([u, i, j]), lambda_reg=1e-4).backward()
        opt_peer.step()

    ours_times, peer_times = [], []
    for _ in range(2):  # interleaved, so that load changes hit both
        ours_times += timed_steps(step_ours, batches, steps)
        peer_times += timed_steps(step_peer, batches, max(1, steps // 2))
    per_epoch = -(-R.nnz // batch_size)
    timer.reset()
    ours_step, peer_step = statistics.median(ours_times), statistics.median(peer_times)
    return dict(dataset=name, steps_per_epoch=per_epoch, embeddings_rel_error=f"{error:.1e}",
                recforge_step_s=round(ours_step, 4), recforge_sample_s=round(sample_per_step, 4),
                pyg_step_s=round(peer_step, 4),
                recforge_epoch_s=round((ours_step + sample_per_step) * per_epoch, 1),
                pyg_epoch_s=round(peer_step * per_epoch, 1),
                speedup=round(peer_step / (ours_step + sample_per_step), 2))


def bench_evaluation(R: sp.csr_matrix, T: sp.csr_matrix, threads: int, repeats: int) -> dict:
    import torch

    from recforge.models import LightGCN

    model = LightGCN(dim=64, layers=3, epochs=0, num_threads=threads, device="cpu").fit(R)
    users = np.flatnonzero(np.diff(T.indptr))
    U = torch.from_numpy(model.user_factors_)
    V = torch.from_numpy(model.item_factors_)

    def peer():
        out = []
        for start in range(0, users.size, 4096):
            block = users[start:start + 4096]
            scores = U[block] @ V.T
            mask = R[block].tocoo()
            scores[mask.row, mask.col] = -np.inf
            out.append(torch.topk(scores, 20).indices)
        return torch.cat(out).numpy()

    def ours():
        return model.recommend(users, n=20)[0]

    a, b = ours(), peer()
    agree = float((a == b).mean())
    t_ours = statistics.median(timed_steps(lambda _: ours(), [None], repeats))
    t_peer = statistics.median(timed_steps(lambda _: peer(), [None], repeats))
    return dict(users=users.size, recforge_s=round(t_ours, 3), torch_topk_s=round(t_peer, 3),
                speedup=round(t_peer / t_ours, 2), same_items=f"{agree:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--steps", type=int, default=6, help="timed recforge steps per round (PyG: half)")
    parser.add_argument("--eval-repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    for name in args.datasets:
        R, T = load(name)
        print(f"{name}: {R.shape[0]} users, {R.shape[1]} items, {R.nnz} train interactions; threads "
              f"{args.threads}; load before {os.getloadavg()[0]:.1f}", flush=True)
        print("  training:", bench_training(name, R, args.threads, args.steps), flush=True)
        if name == "gowalla":
            print("  evaluation:", bench_evaluation(R, T, args.threads, args.eval_repeats), flush=True)
        print(f"  load after {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
