"""Seconds per Beauty training epoch: recforge SASRec against a plain PyTorch SASRec of the same size.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_sasrec_speed.py --threads 2 --repeat 3

Original settings on both sides: BCE with one sampled negative per position, hidden 64, 2 blocks,
2 heads, dropout 0.5, max_len 50, batch 256, Adam 1e-3, one epoch = every training user once.
The plain implementation below is what a compact SASRec looks like when written directly
(in the manner of the public SASRec.pytorch ports; written here, not copied): every batch padded
to max_len, ``nn.MultiheadAttention`` with a causal mask, negatives drawn per position in a
Python loop over the user's item set, ``BCEWithLogitsLoss`` over the non-padding positions.
Both run in this process on the same sequences and thread count, alternately; the script prints
per-epoch seconds, their medians and the ratio (recforge both as a whole ``fit`` of one epoch and as\nthe epoch alone), the seconds of a full-ranking leave-one-out evaluation of every test user, and the last training loss of both (the same
objective, but the plain model starts, as published, from N(0, 1) item embeddings scaled by
sqrt(hidden), so its early losses are larger; they are printed for reference, not compared).

``--amp-compare``: instead of the plain model, recforge SASRec with the same settings in float32
and with ``amp=True`` (CPU: bfloat16 autocast; the optimizer, its state and the master weights
stay float32), one epoch (~88 steps on Beauty) each, alternately, ``--repeat`` times, in this
process: per-epoch wall seconds, the process CPU seconds of each whole one-epoch ``fit`` (less
sensitive to a loaded machine than wall time; with one thread, about the work done), medians,
the ratios, and the loss of each epoch.

On a shared machine set OMP_WAIT_POLICY=PASSIVE: with spinning OpenMP barriers torch's
2-thread kernels slow down ~10x whenever the cores are oversubscribed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np


def plain_sasrec(n_items: int, hidden: int, heads: int, blocks: int, max_len: int, dropout: float):
    import torch
    from torch import nn

    class PlainSASRec(nn.Module):
        def __init__(self):
            super().__init__()
            self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
            self.pos_emb = nn.Embedding(max_len, hidden)
            self.emb_dropout = nn.Dropout(dropout)
            self.attn_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(blocks))
            self.attns = nn.ModuleList(nn.MultiheadAttention(hidden, heads, dropout=dropout) for _ in range(blocks))
            self.ffn_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(blocks))
            self.ffns = nn.ModuleList(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                                    nn.Linear(hidden, hidden), nn.Dropout(dropout))
                                      for _ in range(blocks))
            self.last_norm = nn.LayerNorm(hidden, eps=1e-8)

        def log2feats(self, seqs):
            x = self.item_emb(seqs) * hidden ** 0.5
            positions = torch.arange(seqs.shape[1]).unsqueeze(0).expand(seqs.shape[0], -1)
            x = self.emb_dropout(x + self.pos_emb(positions))
            timeline = (seqs == 0).unsqueeze(-1)
            x = x * ~timeline
            length = x.shape[1]
            causal = ~torch.tril(torch.ones(length, length, dtype=torch.bool))
            for i in range(len(self.attns)):
                x = x.transpose(0, 1)
                q = self.attn_norms[i](x)
                out, _ = self.attns[i](q, x, x, attn_mask=causal)
                x = (q + out).transpose(0, 1)
                x = self.ffn_norms[i](x)
                x = x + self.ffns[i](x)
                x = x * ~timeline
            return self.last_norm(x)

        def forward(self, seqs, pos, neg):
            feats = self.log2feats(seqs)
            return (feats * self.item_emb(pos)).sum(-1), (feats * self.item_emb(neg)).sum(-1)

    return PlainSASRec()


def plain_batch(seqs, users, n_items, max_len, rnd):
    """Per user: inputs, positives and one negative per position, built in Python loops."""
    seq = np.zeros((len(users), max_len), dtype=np.int64)
    pos = np.zeros_like(seq)
    neg = np.zeros_like(seq)
    for r, u in enumerate(users):
        s = seqs[u] + 1
        own = set(s.tolist())
        nxt = s[-1]
        idx = max_len - 1
        for i in reversed(s[:-1].tolist()):
            seq[r, idx], pos[r, idx] = i, nxt
            t = rnd.randint(1, n_items)
            while t in own:
                t = rnd.randint(1, n_items)
            neg[r, idx] = t
            nxt = i
            idx -= 1
            if idx == -1:
                break
    return seq, pos, neg


def plain_epoch(model, opt, seqs, n_items, max_len, batch_size, rnd):
    import torch

    model.train()
    users = [u for u in range(len(seqs)) if seqs[u].size >= 2]
    rnd.shuffle(users)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    for start in range(0, len(users), batch_size):
        s, p, n = (torch.from_numpy(a) for a in plain_batch(seqs, users[start:start + batch_size], n_items, max_len, rnd))
        pos_logits, neg_logits = model(s, p, n)
        where = p != 0
        loss = loss_fn(pos_logits[where], torch.ones_like(pos_logits[where])) + \
            loss_fn(neg_logits[where], torch.zeros_like(neg_logits[where]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Beauty")
    p.add_argument("--data-dir", default=os.environ.get("RECFORGE_DATA_DIR", "/work/shared/data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--amp-compare", action="store_true", help="float32 against amp=True (bfloat16 on the CPU)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import recforge.datasets
    from recforge.evaluation.leave_one_out import leave_one_out
    from recforge.models.sequential import SASRec

    inter = recforge.datasets.amazon(args.dataset, data_dir=args.data_dir)
    split = leave_one_out(inter)
    train_data = split.train_interactions(inter.user_ids, inter.item_ids)
    train = split.train_sequences()
    hidden, heads, blocks, max_len, dropout, batch = 64, 2, 2, 50, 0.5, 256
    if args.amp_compare:
        return compare_amp(train_data, args, dict(hidden=hidden, heads=heads, blocks=blocks, max_len=max_len,
                                                  dropout=dropout, loss="bce", batch_size=batch, lr=1e-3, epochs=1,
                                                  seed=0, num_threads=args.threads, device="cpu",
                                                  early_stopping_patience=None))
    torch.manual_seed(0)
    plain = plain_sasrec(split.n_items, hidden, heads, blocks, max_len, dropout)
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-3, betas=(0.9, 0.98))
    rnd = random.Random(0)
    ours = SASRec(hidden=hidden, heads=heads, blocks=blocks, max_len=max_len, dropout=dropout, loss="bce",
                  batch_size=batch, lr=1e-3, epochs=1, seed=0, num_threads=args.threads)
    times = {"recforge": [], "recforge epoch only": [], "plain": []}
    losses = {}
    for r in range(args.repeat):
        t = time.perf_counter()
        ours.fit(train_data)
        times["recforge"].append(time.perf_counter() - t)
        losses["recforge"] = ours.history_["records"][-1]["loss"]
        times["recforge epoch only"].append(ours.history_["records"][-1]["seconds"])
        t = time.perf_counter()
        losses["plain"] = plain_epoch(plain, plain_opt, train, split.n_items, max_len, batch, rnd)
        times["plain"].append(time.perf_counter() - t)
        print(json.dumps({"repeat": r, "recforge_s": round(times["recforge"][-1], 2),
                          "plain_s": round(times["plain"][-1], 2), "load1": os.getloadavg()[0]}), flush=True)
    from recforge.evaluation.leave_one_out import full_ranks

    eval_s = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        users, _ = full_ranks(ours, split, "test", "exclude", k=10)
        eval_s.append(time.perf_counter() - t)
    print(json.dumps({"full_ranking_eval_users": int(users.size), "full_ranking_eval_s": eval_s}), flush=True)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(json.dumps({"median_epoch_s": med, "speedup": med["plain"] / med["recforge"],
                      "speedup_epoch_only": med["plain"] / med["recforge epoch only"],
                      "median_full_ranking_eval_s": float(np.median(eval_s)), "loss_after_epoch": losses,
                      "threads": args.threads, "load1": os.getloadavg()[0]}))


def compare_amp(train_data, args, params: dict) -> None:
    """Seconds per epoch of float32 and amp=True fits, alternately (module docstring)."""
    from recforge.models.sequential import SASRec

    models = {"float32": SASRec(**params, amp=False), "amp (bfloat16 autocast)": SASRec(**params, amp=True)}
    times = {name: [] for name in models}
    cpu = {name: [] for name in models}
    for r in range(args.repeat):
        for name, model in models.items():
            c = time.process_time()
            model.fit(train_data)
            cpu[name].append(time.process_time() - c)
            record = model.history_["records"][-1]
            times[name].append(record["seconds"])
            print(json.dumps({"repeat": r, "mode": name, "epoch_s": round(record["seconds"], 2),
                              "fit_cpu_s": round(cpu[name][-1], 2), "loss": record["loss"],
                              "load1": os.getloadavg()[0]}), flush=True)
    med = {k: float(np.median(v)) for k, v in times.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    print(json.dumps({"median_epoch_s": med, "amp_speedup": med["float32"] / med["amp (bfloat16 autocast)"],
                      "median_fit_cpu_s": med_cpu,
                      "amp_speedup_cpu": med_cpu["float32"] / med_cpu["amp (bfloat16 autocast)"],
                      "training_users": int(sum(s.size >= 2 for s in train_data.to_sequences())),
                      "batch_size": params["batch_size"], "threads": args.threads,
                      "load1": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
