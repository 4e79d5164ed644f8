"""Request and response bodies (pydantic), which FastAPI validates (bad input -> 422) and documents."""
from __future__ import annotations

from typing import List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Id = Union[int, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoredItem(BaseModel):
    item_id: Id
    score: float


class Recommendations(BaseModel):
    user_id: Optional[Id] = None
    items: List[ScoredItem]
    model_version: str


class BatchRecommendations(BaseModel):
    results: List[Recommendations]
    model_version: str


class HistoryItem(_Strict):
    item_id: Id
    value: float = Field(1.0, allow_inf_nan=False)


class HistoryRequest(_Strict):
    """Recommend from an ad-hoc history: an anonymous visitor (no user_id), a new user, or a known
    user's stored history and events plus these items."""

    user_id: Optional[Id] = None
    history: List[HistoryItem] = Field(default_factory=list, max_length=10_000)
    n: int = Field(10, ge=1)
    exclude_seen: bool = True
    filter: List[Id] = Field(default_factory=list, max_length=100_000,
                             description="item ids never to recommend")


class BatchRequest(_Strict):
    user_ids: List[Id] = Field(min_length=1)
    n: int = Field(10, ge=1)
    exclude_seen: bool = True
    filter: List[Id] = Field(default_factory=list, max_length=100_000)


class Event(_Strict):
    user_id: Id
    item_id: Id
    value: float = Field(1.0, allow_inf_nan=False)
    timestamp: Optional[int] = Field(None, ge=0, description="event time in seconds (default: now)")


class EventBatch(_Strict):
    events: List[Event] = Field(min_length=1)


class EventsAccepted(BaseModel):
    accepted: int
    first_id: int
    last_id: int


class SimilarItems(BaseModel):
    item_id: Id
    items: List[ScoredItem]
    model_version: str


class Problem(BaseModel):
    """Every error body: a machine-readable code and a message (never a stack trace)."""

    error: str
    detail: str
    ids: Optional[List[Id]] = None


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    model: Optional[str] = None
    model_version: Optional[str] = None
    events: Optional[int] = None
