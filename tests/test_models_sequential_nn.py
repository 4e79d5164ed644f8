"""The pieces under SASRec / BERT4Rec: attention masks, the transformer encoder, batching, losses.

References are independent of the code under test: attention written out with numpy
(softmax over allowed keys), losses computed with plain numpy loops on hand-made batches,
padding and bucketing checked by set logic.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings, strategies as st  # noqa: E402

from recforge.models.sequential import batching as B  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def make_net(kind="sasrec", n_items=30, hidden=16, heads=2, blocks=2, max_len=8, dropout=0.0, pre_norm=True, seed=0):
    from recforge.models.sequential.networks import BERT4RecNet, SASRecNet

    torch.manual_seed(seed)
    cls = SASRecNet if kind == "sasrec" else BERT4RecNet
    return cls(n_items, hidden, heads, blocks, max_len, dropout, pre_norm).eval()


# ----------------------------------------------------------------------------- attention

def test_attention_mask_causal_and_padding():
    from recforge.torch.nn.transformer import attention_mask

    valid = torch.tensor([[False, False, True, True, True]])
    mask = attention_mask(valid, causal=True)[0, 0].numpy()
    for i in range(5):
        for j in range(5):
            if valid[0, i]:
                assert mask[i, j] == (bool(valid[0, j]) and j <= i), (i, j)
            else:
                assert mask[i, j] == (i == j), "a padding query sees only itself"
    both = attention_mask(valid, causal=False)[0, 0].numpy()
    assert both[2].tolist() == [False, False, True, True, True]


def test_attention_equals_a_numpy_softmax_reference():
    from recforge.torch.nn.transformer import MultiHeadSelfAttention, attention_mask

    torch.manual_seed(3)
    att = MultiHeadSelfAttention(8, 2, 0.0).eval()
    x = torch.randn(2, 4, 8)
    valid = torch.tensor([[True] * 4, [False, True, True, True]])
    mask = attention_mask(valid, causal=True)
    got = att(x, mask).detach().numpy()
    W, b = att.qkv.weight.detach().numpy(), att.qkv.bias.detach().numpy()
    Wo, bo = att.out.weight.detach().numpy(), att.out.bias.detach().numpy()
    xs = x.numpy()
    for n in range(2):
        qkv = xs[n] @ W.T + b
        heads = []
        for h in range(2):
            q, k, vv = (qkv[:, part * 8 + h * 4: part * 8 + h * 4 + 4] for part in range(3))
            logits = q @ k.T / np.sqrt(4)
            logits[~mask[n, 0].numpy()] = -np.inf
            w = np.exp(logits - logits.max(axis=1, keepdims=True))
            w /= w.sum(axis=1, keepdims=True)
            heads.append(w @ vv)
        want = np.concatenate(heads, axis=1) @ Wo.T + bo
        np.testing.assert_allclose(got[n], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_causal_later_items_do_not_change_earlier_outputs(pre_norm):
    net = make_net("sasrec", pre_norm=pre_norm)
    tokens = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    out = net(tokens)
    changed = tokens.clone()
    changed[0, 5:] = torch.tensor([20, 21, 22])
    out2 = net(changed)
    torch.testing.assert_close(out[0, :5], out2[0, :5])
    assert not torch.allclose(out[0, 5:], out2[0, 5:])


def test_bidirectional_encoder_sees_later_items():
    net = make_net("bert4rec", pre_norm=False)
    tokens = torch.tensor([[0, 3, 7, 9, 11]])
    changed = tokens.clone()
    changed[0, 4] = 20
    assert not torch.allclose(net(tokens)[0, 1], net(changed)[0, 1])


@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_padding_never_attends(kind):
    """Real positions give the same output however much padding precedes them, and padding
    outputs are zero."""
    net = make_net(kind, pre_norm=kind == "sasrec")
    short = torch.tensor([[4, 8, 15]])
    padded = torch.tensor([[0, 0, 0, 0, 4, 8, 15], [0, 0, 0, 0, 4, 8, 15]])
    a, b = net.encoder(net.item_embedding(short), short != 0), net.encoder(net.item_embedding(padded), padded != 0)
    torch.testing.assert_close(a[0], b[0, 4:], rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(b[:, :4]) == 0


def test_sequences_longer_than_max_len_are_refused():
    net = make_net(max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        net(torch.ones(1, 5, dtype=torch.long))


# ----------------------------------------------------------------------------- batching

@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), max_size=12), min_size=1, max_size=8), st.integers(1, 6))
def test_pad_left_keeps_the_last_items_right_aligned(seqs, max_len):
    arrays = [np.array(s, dtype=np.int64) for s in seqs]
    out = B.pad_left(arrays, max_len)
    assert out.shape[1] == max(1, min(max_len, max(len(s) for s in seqs)))
    for row, s in zip(out, seqs):
        kept = s[-max_len:] if s else []
        assert list(row[row != 0] - 1) == kept
        assert all(row[: out.shape[1] - len(kept)] == 0)


def test_pad_left_with_an_appended_token():
    out = B.pad_left([np.array([1, 2, 3]), np.array([], dtype=np.int64)], 3, extra=99)
    assert out.tolist() == [[3, 4, 99], [0, 0, 99]]


def test_bucketed_batches_cover_every_user_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 1000)
    batches = B.bucketed_batches(lengths, 16, rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(b.size <= 16 for b in batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 4, "batches hold sequences of similar length"


def test_next_item_batch_shifts_by_one():
    inputs, targets = B.next_item_batch([np.array([5, 6, 7, 8])], 10)
    assert inputs.tolist() == [[6, 7, 8]] and targets.tolist() == [[7, 8, 9]]


def test_bert4rec_masking_rate_and_targets():
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 50, rng.integers(1, 30)) for _ in range(3000)]
    inputs, targets = B.masked_item_batch(seqs, 30, 0.2, 51, rng)
    tokens = B.pad_left(seqs, 30)
    real = tokens != 0
    masked = inputs == 51
    assert np.array_equal(masked, targets != 0), "targets exactly at the masked positions"
    np.testing.assert_array_equal(targets[masked], tokens[masked])
    np.testing.assert_array_equal(inputs[~masked], tokens[~masked])
    assert not (masked & ~real).any(), "padding is never masked"
    assert masked.any(axis=1).all(), "every sequence has a target"
    # the rate over positions of sequences that got a Bernoulli mask anyway (long ones): 0.2
    long_rows = real.sum(axis=1) >= 20
    rate = masked[long_rows].sum() / real[long_rows].sum()
    n = real[long_rows].sum()
    assert abs(rate - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n) + 0.005


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_uniform_negatives_avoid_the_users_items(seed):
    rng = np.random.default_rng(seed)
    n_items = 12
    seqs = [rng.integers(0, n_items, rng.integers(2, 9)) for _ in range(6)]
    _, targets = B.next_item_batch(seqs, 8)
    negs = B.uniform_negatives(seqs, targets, n_items, rng, max_tries=200)
    for row, s, t in zip(negs, seqs, targets):
        assert np.all(row[t == 0] == 0)
        assert not set((row[t != 0] - 1).tolist()) & set(s.tolist())


# ----------------------------------------------------------------------------- losses

def _hand_net(n_items=5, hidden=3, bias=False):
    net = make_net("bert4rec" if bias else "sasrec", n_items=n_items, hidden=4, heads=1, blocks=1)
    return net


def _scores_np(net, q, items):
    E = net.item_embedding.weight.detach().numpy()[1:]
    b = net.item_bias()
    b = np.zeros(E.shape[0]) if b is None else b.detach().numpy()
    return q @ E[items].T + b[items]


@pytest.mark.parametrize("bias", [False, True])
def test_losses_equal_a_direct_computation(bias):
    from recforge.models.sequential import objectives as O

    net = _hand_net(bias=bias)
    with torch.no_grad():
        if bias:
            net.output_bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0, 0.5]))
    q = torch.tensor([[0.5, -1.0, 0.25, 2.0], [1.5, 0.0, -0.5, 0.3], [-0.7, 0.2, 0.9, -1.1]])
    y = torch.tensor([0, 3, 2])
    qn = q.numpy().astype(np.float64)
    sc = [[_scores_np(net, qn[t], np.array([c]))[0] for c in range(5)] for t in range(3)]
    sc = np.array(sc)

    # bce: one negative per position
    negs = torch.tensor([4, 1, 0])
    want = np.mean([np.log1p(np.exp(-sc[t, y[t]])) + np.log1p(np.exp(sc[t, negs[t]])) for t in range(3)])
    with torch.no_grad():
        got_bce = float(O.bce_loss(net, q, y, negs))
    assert got_bce == pytest.approx(want, rel=1e-5)

    # sampled softmax with shared negatives [2, 4, 1], an accidental hit (row 2, item 2) and logQ
    shared = torch.tensor([2, 4, 1])
    log_q = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25]))
    lq = log_q.numpy().astype(np.float64)
    terms = []
    for t in range(3):
        pos = sc[t, y[t]] - lq[y[t]]
        others = [sc[t, c] - lq[c] for c in shared.tolist() if c != int(y[t])]
        terms.append(np.log(np.exp(pos) + np.sum(np.exp(others))) - pos)
    with torch.no_grad():
        got = float(O.sampled_softmax_loss(net, q, y, shared, log_q))
    assert got == pytest.approx(np.mean(terms), rel=1e-5)

    # full cross-entropy
    want = np.mean([np.log(np.exp(sc[t]).sum()) - sc[t, y[t]] for t in range(3)])
    with torch.no_grad():
        got = float(O.full_ce_loss(net, q, y))
    assert got == pytest.approx(want, rel=1e-5)


def test_gather_targets_takes_only_target_positions():
    from recforge.models.sequential.objectives import gather_targets

    queries = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    targets = torch.tensor([[0, 4, 2], [0, 0, 7]])
    q, y = gather_targets(queries, targets)
    assert y.tolist() == [3, 1, 6]
    torch.testing.assert_close(q, queries[[0, 0, 1], [1, 2, 2]])
