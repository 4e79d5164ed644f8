"""What the endpoints do, free of HTTP: ids to codes, live history, the model call, codes to ids.

A known user without new events is one ``model.recommend([code])`` on the stored row. A user
with events since the model was built (or a new user, or an ad-hoc history) is recommended from
``history=``: the stored row plus the events' items (values summed), so an event changes the
very next recommendation without refitting. Items unknown to the model are left out of a
history (a refit or ``partial_fit`` learns them). Models that require ordered sequences get
the history as item sequences instead (the stored sequence where the model keeps one, then the
events oldest first).
"""
from __future__ import annotations

from math import isfinite
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.serving.live_events import LiveEvents
from recforge.serving.model_holder import ServedModel


class UnknownIdError(LookupError):
    """Ids the model does not know (and, for users, that have no events either): a 404."""

    def __init__(self, kind: str, ids: Sequence[Any]):
        self.kind, self.ids = kind, list(ids)
        shown = ", ".join(repr(x) for x in self.ids[:10]) + (" ..." if len(self.ids) > 10 else "")
        super().__init__(f"unknown {kind} id{'s' if len(self.ids) > 1 else ''}: {shown}")


class BadIdError(ValueError):
    """An id that cannot be one of the model's ids (e.g. text where the ids are integers): a 422."""


def _scored(served: ServedModel, items: np.ndarray, scores: np.ndarray) -> list[dict]:
    """JSON-ready ``{"item_id", "score"}`` entries (padding dropped; a non-finite score is None)."""
    ids = served.item_ids
    return [{"item_id": ids[i], "score": s if isfinite(s) else None}
            for i, s in zip(items.tolist(), scores.tolist()) if i >= 0]


def _filter_codes(served: ServedModel, filter_ids: Iterable[Any]) -> np.ndarray | None:
    """Codes of the filter's known items (unknown ones cannot be recommended anyway)."""
    codes = []
    for value in filter_ids:
        text = served.id_text(value)
        code = served.item_codes.get(text) if text is not None else None
        if code is not None:
            codes.append(code)
    return np.asarray(codes, dtype=np.int64) if codes else None


def _history_rows(served: ServedModel, codes: Sequence[int], extra: Sequence[list[tuple[str, float]]]) -> sp.csr_matrix:
    """Per user: the stored row (known users) plus the (item id, value) pairs of ``extra``."""
    stored = served.model.user_items_
    rows, cols, vals = [], [], []
    for r, (code, pairs) in enumerate(zip(codes, extra)):
        if code >= 0:
            lo, hi = stored.indptr[code], stored.indptr[code + 1]
            cols.extend(stored.indices[lo:hi].tolist())
            vals.extend(stored.data[lo:hi].tolist())
            rows.extend([r] * int(hi - lo))
        for item, value in pairs:
            c = served.item_codes.get(item)
            if c is not None:
                rows.append(r)
                cols.append(c)
                vals.append(value)
    H = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (np.asarray(rows, dtype=np.int64),
                       np.asarray(cols, dtype=np.int64))), shape=(len(codes), served.n_items))
    H.sum_duplicates()
    return H


def _history(served: ServedModel, codes: Sequence[int], extra: Sequence[list[tuple[str, float]]]):
    """The ``history=`` argument: item sequences for sequence models, else rows (values summed)."""
    model = served.model
    if "sequences" not in getattr(model, "requires", ()):
        return _history_rows(served, codes, extra)
    stored_of = getattr(model, "_stored_sequences", None)
    stored = stored_of(np.asarray(codes, dtype=np.int64)) if stored_of is not None else None
    R = model.user_items_
    sequences = []
    for k, (code, pairs) in enumerate(zip(codes, extra)):
        if stored is not None:
            base = np.asarray(stored[k], dtype=np.int64)
        else:
            base = R.indices[R.indptr[code]:R.indptr[code + 1]].astype(np.int64) if code >= 0 else np.empty(0, np.int64)
        added = [served.item_codes[i] for i, _ in pairs if i in served.item_codes]
        sequences.append(np.concatenate([base, np.asarray(added, dtype=np.int64)]))
    return sequences


def recommend_users(served: ServedModel, live: LiveEvents, user_ids: Sequence[Any], n: int,
                    exclude_seen: bool = True, filter_ids: Iterable[Any] = ()) -> list[list[dict]]:
    """Top-n lists for known users (or users with events); UnknownIdError names the others."""
    texts = [served.id_text(u) for u in user_ids]
    codes = [served.user_codes.get(t, -1) if t is not None else -1 for t in texts]
    pending = [live.pending(t, served.events_upto) if t is not None else [] for t in texts]
    unknown = [u for u, c, p in zip(user_ids, codes, pending) if c < 0 and not p]
    if unknown:
        raise UnknownIdError("user", unknown)
    blocked = _filter_codes(served, filter_ids)
    out: list[list[dict]] = [[] for _ in user_ids]
    plain = [k for k, p in enumerate(pending) if not p]
    live_rows = [k for k, p in enumerate(pending) if p]
    model = served.model
    if plain:
        items, scores = model.recommend(np.asarray([codes[k] for k in plain], dtype=np.int64), n,
                                        exclude_seen=exclude_seen, filter_items=blocked)
        for row, k in enumerate(plain):
            out[k] = _scored(served, items[row], scores[row])
    if live_rows:
        sub_codes = [codes[k] for k in live_rows]
        H = _history(served, sub_codes, [pending[k] for k in live_rows])
        items, scores = model.recommend(np.asarray(sub_codes, dtype=np.int64), n, exclude_seen=exclude_seen,
                                        filter_items=blocked, history=H)
        for row, k in enumerate(live_rows):
            out[k] = _scored(served, items[row], scores[row])
    return out


def recommend_history(served: ServedModel, live: LiveEvents, user_id: Any, history: Sequence[tuple[Any, float]],
                      n: int, exclude_seen: bool = True, filter_ids: Iterable[Any] = ()) -> list[dict]:
    """Top-n from an ad-hoc history (plus, for a given user, their stored row and events)."""
    code, pairs = -1, []
    if user_id is not None:
        text = served.id_text(user_id)
        if text is not None:
            code = served.user_codes.get(text, -1)
            pairs = live.pending(text, served.events_upto)
    for item, value in history:
        text = served.id_text(item)
        if text is not None:
            pairs.append((text, float(value)))
    H = _history(served, [code], [pairs])
    items, scores = served.model.recommend(np.asarray([code], dtype=np.int64), n, exclude_seen=exclude_seen,
                                           filter_items=_filter_codes(served, filter_ids), history=H)
    return _scored(served, items[0], scores[0])


def similar_items(served: ServedModel, item_id: Any, n: int) -> list[dict]:
    text = served.id_text(item_id)
    code = served.item_codes.get(text) if text is not None else None
    if code is None:
        raise UnknownIdError("item", [item_id])
    items, scores = served.model.similar_items(np.asarray([code], dtype=np.int64), n)
    return _scored(served, items[0], scores[0])


def event_rows(served: ServedModel, events: Sequence[Any], now: int) -> list[tuple[str, str, float, int]]:
    """(user_id, item_id, value, ts) rows for the store; BadIdError for ids the model cannot have."""
    rows = []
    for k, e in enumerate(events):
        user, item = served.id_text(e.user_id), served.id_text(e.item_id)
        for name, text, raw in (("user_id", user, e.user_id), ("item_id", item, e.item_id)):
            if text is None:
                raise BadIdError(f"events[{k}].{name} = {raw!r}: this model's ids are integers")
        rows.append((user, item, float(e.value), int(e.timestamp if e.timestamp is not None else now)))
    return rows
