r"""Transformer blocks for sequence recommenders (SASRec, BERT4Rec).

A :class:`SequenceEncoder` turns embedded item sequences ``x`` (batch x length x hidden, left
padded) and their validity mask into one hidden vector per position:

.. math::

    h^{(0)} = \mathrm{drop}(\alpha\,x + P_{\mathrm{pos}}),\qquad
    h^{(b)} = \mathrm{Block}_b(h^{(b-1)}),\qquad b = 1..B

with learned positions :math:`P` (right aligned: the last slot of a sequence always has
position ``max_len - 1`` whatever the batch length, so trimmed batches see the positions a
full ``max_len`` window would), :math:`\alpha = \sqrt{d}` when ``scale_embeddings``. A block is
multi-head self-attention and a position-wise feed-forward network, each with a residual,
dropout and LayerNorm, either before the sub-layer (``pre_norm=True``, as in SASRec; a final
LayerNorm closes the stack) or after it (``pre_norm=False``, as in BERT):

.. math::

    \text{pre: } h \leftarrow h + \mathrm{drop}(f(\mathrm{LN}(h))) \qquad
    \text{post: } h \leftarrow \mathrm{LN}(h + \mathrm{drop}(f(h)))

Attention is :func:`torch.nn.functional.scaled_dot_product_attention`,
:math:`\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)V` per head, with the mask :math:`M` allowing a
query position i to see key j only when j is a real item (never padding) and, with
``causal=True``, j <= i. A padding query sees only itself (so no softmax row is empty); its
output is zeroed after every block, so padding never feeds a real position.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def attention_mask(valid: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean (batch, 1, L, L) mask, True where query i may attend key j (module docstring)."""
    batch, length = valid.shape
    allowed = valid[:, None, None, :].expand(batch, 1, length, length)
    eye = torch.eye(length, dtype=torch.bool, device=valid.device)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
    return allowed | eye


class MultiHeadSelfAttention(nn.Module):
    """Self-attention over ``heads`` heads of size hidden / heads, through SDPA."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.dropout = float(dropout)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(batch, length, hidden))


class FeedForward(nn.Module):
    """Position-wise :math:`W_2\\,\\mathrm{drop}(\\sigma(W_1 h + b_1)) + b_2`."""

    def __init__(self, hidden: int, inner: int, dropout: float, activation: str):
        super().__init__()
        self.up = nn.Linear(hidden, inner)
        self.down = nn.Linear(inner, hidden)
        self.dropout = nn.Dropout(dropout)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dropout(self.activation(self.up(x))))


class TransformerBlock(nn.Module):
    """Attention + feed-forward, each with residual, dropout and LayerNorm (pre or post)."""

    def __init__(self, hidden: int, heads: int, dropout: float, attention_dropout: float, pre_norm: bool,
                 inner: int, activation: str, eps: float = 1e-8):
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = MultiHeadSelfAttention(hidden, heads, attention_dropout)
        self.feed_forward = FeedForward(hidden, inner, dropout, activation)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            h = h + self.dropout(self.attention(self.norm1(h), mask))
            return h + self.dropout(self.feed_forward(self.norm2(h)))
        h = self.norm1(h + self.dropout(self.attention(h, mask)))
        return self.norm2(h + self.dropout(self.feed_forward(h)))


class SequenceEncoder(nn.Module):
    """Learned positions + ``blocks`` transformer blocks (module docstring for the formulas).

    ``forward(x, valid)``: x float (batch, L, hidden) with L <= max_len, valid bool (batch, L)
    (False at padding); returns (batch, L, hidden), zero at padding positions.
    """

    def __init__(self, hidden: int, heads: int, blocks: int, max_len: int, dropout: float, *,
                 attention_dropout: float | None = None, pre_norm: bool = True, causal: bool = True,
                 inner: int | None = None, activation: str = "gelu", scale_embeddings: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.max_len, self.causal, self.pre_norm = max_len, causal, pre_norm
        self.scale = math.sqrt(hidden) if scale_embeddings else 1.0
        self.positions = nn.Embedding(max_len, hidden)
        nn.init.normal_(self.positions.weight, std=hidden ** -0.5)  # the item embeddings' scale
        self.input_norm = None if pre_norm else nn.LayerNorm(hidden, eps=1e-8)
        self.dropout = nn.Dropout(dropout)
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden, heads, dropout, attention_dropout, pre_norm, inner or 4 * hidden, activation)
            for _ in range(blocks))
        self.output_norm = nn.LayerNorm(hidden, eps=1e-8) if pre_norm else None

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequences of length {length} exceed max_len={self.max_len}")
        positions = self.positions.weight[self.max_len - length:]
        h = x * self.scale + positions
        if self.input_norm is not None:
            h = self.input_norm(h)
        keep = valid.unsqueeze(-1).to(h.dtype)
        h = self.dropout(h) * keep
        mask = attention_mask(valid, self.causal)
        for block in self.blocks:
            h = block(h, mask) * keep
        if self.output_norm is not None:
            h = self.output_norm(h) * keep
        return h
