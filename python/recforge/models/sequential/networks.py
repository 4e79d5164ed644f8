r"""The torch networks behind SASRec and BERT4Rec (imported only inside fit / scoring).

Both map token batches (see :mod:`.batching`) to one query vector per position, and score
item c at a position as :math:`q \cdot e_c + b_c` with the shared item embedding table
:math:`e` (token c + 1) and an optional per-item output bias :math:`b` (BERT4Rec).

* :class:`SASRecNet` — causal encoder (the item at position t sees positions <= t), pre-LayerNorm
  by default (Kang & McAuley, ICDM 2018); :math:`q_t = h_t`.
* :class:`BERT4RecNet` — bidirectional encoder over sequences with mask tokens (Sun et al.,
  CIKM 2019), post-LayerNorm by default; :math:`q_t = \mathrm{LN}(\mathrm{GELU}(W h_t + w))`.
"""
from __future__ import annotations

import torch
from torch import nn

from recforge.torch.nn.transformer import SequenceEncoder


class SequenceNet(nn.Module):
    """Item embeddings + :class:`SequenceEncoder`; subclasses choose causality and the head."""

    causal = True
    extra_tokens = 1  # padding

    def __init__(self, n_items: int, hidden: int, heads: int, blocks: int, max_len: int, dropout: float,
                 pre_norm: bool, inner: int | None = None, scale_embeddings: bool = False):
        super().__init__()
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items + self.extra_tokens, hidden, padding_idx=0)
        nn.init.normal_(self.item_embedding.weight, std=hidden ** -0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.encoder = SequenceEncoder(hidden, heads, blocks, max_len, dropout, pre_norm=pre_norm,
                                       causal=self.causal, inner=inner,
                                       scale_embeddings=scale_embeddings)
        self.output_bias = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, L) tokens -> (batch, L, hidden) query vectors."""
        valid = tokens != 0
        return self.head(self.encoder(self.item_embedding(tokens), valid))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def item_table(self) -> torch.Tensor:
        """(n_items, hidden) item vectors (row c = item code c)."""
        return self.item_embedding.weight[1:self.n_items + 1]

    def item_bias(self) -> torch.Tensor | None:
        return self.output_bias

    def score(self, queries: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of item codes: queries (N, d) with items (N,) -> (N,); with items (N, c) -> (N, c);
        with items (K,) shared by all rows and ``queries`` (N, d) use :meth:`score_shared`."""
        vectors = self.item_embedding(items + 1)
        if items.dim() == 1:
            s = (queries * vectors).sum(-1)
        else:
            s = torch.einsum("nd,ncd->nc", queries, vectors)
        bias = self.item_bias()
        return s if bias is None else s + bias[items]

    def score_shared(self, queries: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """(N, K) scores of the same items for every query (all items when ``items`` is None)."""
        table = self.item_table() if items is None else self.item_embedding(items + 1)
        s = queries @ table.T
        bias = self.item_bias()
        if bias is not None:
            s = s + (bias if items is None else bias[items])
        return s


class SASRecNet(SequenceNet):
    causal = True


class BERT4RecNet(SequenceNet):
    causal = False
    extra_tokens = 2  # padding and the mask token n_items + 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hidden = self.item_embedding.embedding_dim
        self.projection = nn.Linear(hidden, hidden)
        self.projection_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.output_bias = nn.Parameter(torch.zeros(self.n_items))

    @property
    def mask_token(self) -> int:
        return self.n_items + 1

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.projection_norm(torch.nn.functional.gelu(self.projection(h)))
