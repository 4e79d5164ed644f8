"""GET /v1/recommendations/{user_id}, POST /v1/recommendations, POST /v1/recommendations:batch."""
from __future__ import annotations

from typing import List

from fastapi import APIRouter, HTTPException, Query, Request

from recforge.serving import service
from recforge.serving.config import ServeConfig
from recforge.serving.schemas import BatchRecommendations, BatchRequest, HistoryRequest, Problem, Recommendations

NOT_FOUND = {404: {"model": Problem, "description": "unknown user (no stored history and no events)"}}


def split_ids(values: List[str]) -> List[str]:
    """Query values given as repeated parameters and/or comma-separated lists, blanks dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def build(config: ServeConfig) -> APIRouter:
    router = APIRouter(tags=["recommendations"])

    def check_n(n: int) -> None:
        if n > config.max_n:
            raise HTTPException(422, f"n must be at most {config.max_n} (the server's limit), got {n}")

    @router.get("/v1/recommendations/{user_id}", response_model=Recommendations, responses=NOT_FOUND)
    async def recommend_user(request: Request, user_id: str,
                             n: int = Query(10, ge=1, le=config.max_n, description="how many items"),
                             exclude_seen: bool = Query(True, description="never return the user's items"),
                             filter: List[str] = Query([], description="item ids never to return "
                                                                       "(comma-separated and/or repeated)")):
        """The n best items for a user, from the stored history plus the user's events so far."""
        state = request.app.state.serving
        state.refresh_events()
        served = state.holder.current
        items = service.recommend_users(served, state.live, [user_id], n, exclude_seen, split_ids(filter))[0]
        return {"user_id": served.public_id(user_id), "items": items, "model_version": served.version}

    @router.post("/v1/recommendations", response_model=Recommendations)
    async def recommend_history(request: Request, body: HistoryRequest):
        """Recommendations from an ad-hoc history: anonymous visitors and new users (plus, with a
        known user_id, that user's stored history and events)."""
        check_n(body.n)
        state = request.app.state.serving
        state.refresh_events()
        served = state.holder.current
        items = service.recommend_history(served, state.live, body.user_id,
                                          [(h.item_id, h.value) for h in body.history], body.n,
                                          body.exclude_seen, body.filter)
        return {"user_id": None if body.user_id is None else served.public_id(body.user_id), "items": items, "model_version": served.version}

    @router.post("/v1/recommendations:batch", response_model=BatchRecommendations, responses=NOT_FOUND)
    async def recommend_batch(request: Request, body: BatchRequest):
        """Recommendations for many users in one call (404 naming every unknown user)."""
        check_n(body.n)
        if len(body.user_ids) > config.max_batch_users:
            raise HTTPException(422, f"at most {config.max_batch_users} user_ids per batch, got {len(body.user_ids)}")
        state = request.app.state.serving
        state.refresh_events()
        served = state.holder.current
        lists = service.recommend_users(served, state.live, body.user_ids, body.n, body.exclude_seen, body.filter)
        return {"results": [{"user_id": served.public_id(u), "items": items, "model_version": served.version}
                            for u, items in zip(body.user_ids, lists)],
                "model_version": served.version}

    return router
