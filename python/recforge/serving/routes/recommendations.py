"""GET /v1/recommendations/{user_id}, POST /v1/recommendations, POST /v1/recommendations:batch.

The GET is the hot path: its path and query parameters are read from the request and the
query validated by one pydantic model (errors are FastAPI's own 422 bodies) instead of
FastAPI's per-parameter dependency machinery, and the answer is
written straight to JSON bytes (``encoding.json_response``); the OpenAPI schema still documents
both (``openapi_extra``, ``responses``).
"""
from __future__ import annotations

from typing import List

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from recforge.serving import service
from recforge.serving.config import ServeConfig
from recforge.serving.encoding import json_response
from recforge.serving.schemas import BatchRecommendations, BatchRequest, HistoryRequest, Problem, Recommendations

USER_ID_PARAMETER = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "the user's id (integer ids as their decimal text)"}
NOT_FOUND = {404: {"model": Problem, "description": "unknown user (no stored history and no events)"}}


def split_ids(values: List[str]) -> List[str]:
    """Query values given as repeated parameters and/or comma-separated lists, blanks dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def query_model(max_n: int) -> type[BaseModel]:
    """The GET's query parameters (unknown ones are ignored, as FastAPI ignores them)."""

    class RecommendQuery(BaseModel):
        n: int = Field(10, ge=1, le=max_n, description="how many items")
        exclude_seen: bool = Field(True, description="never return the user's items")
        filter: List[str] = Field([], description="item ids never to return (comma-separated and/or repeated)")

    return RecommendQuery


def query_parameters(model: type[BaseModel]) -> list[dict]:
    """OpenAPI entries for the query parameters of ``model``."""
    schema = model.model_json_schema()
    return [{"name": name, "in": "query", "required": False, "schema": field,
             "description": field.get("description", "")}
            for name, field in schema["properties"].items()]


def build(config: ServeConfig) -> APIRouter:
    router = APIRouter(tags=["recommendations"])
    Query = query_model(config.max_n)
    defaults = Query()

    def check_n(n: int) -> None:
        if n > config.max_n:
            raise HTTPException(422, f"n must be at most {config.max_n} (the server's limit), got {n}")

    def parse_query(request: Request):
        params = request.query_params
        if not params:
            return defaults
        if len(params) == 1 and "n" in params:
            text = params["n"]      # the usual ?n=10, in canonical decimal: what pydantic would give
            if text.isascii() and text.isdigit() and text[0] != "0" and int(text) <= config.max_n:
                return Query.model_construct(n=int(text), exclude_seen=defaults.exclude_seen, filter=[])
        raw = {name: params[name] for name in ("n", "exclude_seen") if name in params}
        if "filter" in params:
            raw["filter"] = params.getlist("filter")
        try:
            return Query.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError([dict(e, loc=("query", *e["loc"])) for e in exc.errors(include_url=False)]) \
                from None

    @router.get("/v1/recommendations/{user_id}", response_model=None,
                responses={200: {"model": Recommendations, "description": "the user's top-n"},
                           **NOT_FOUND},
                openapi_extra={"parameters": [USER_ID_PARAMETER, *query_parameters(Query)]})
    async def recommend_user(request: Request):
        """The n best items for a user, from the stored history plus the user's events so far."""
        user_id = request.path_params["user_id"]
        query = parse_query(request)
        state = request.app.state.serving
        state.refresh_events()
        served = state.holder.current
        items = service.recommend_users(served, state.live, [user_id], query.n, query.exclude_seen,
                                        split_ids(query.filter) if query.filter else ())[0]
        return json_response({"user_id": served.public_id(user_id), "items": items, "model_version": served.version})

    @router.post("/v1/recommendations", response_model=None,
                 responses={200: {"model": Recommendations, "description": "the top-n of the history"}})
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
        return json_response({"user_id": None if body.user_id is None else served.public_id(body.user_id),
                              "items": items, "model_version": served.version})

    @router.post("/v1/recommendations:batch", response_model=None,
                 responses={200: {"model": BatchRecommendations, "description": "one top-n per user"}, **NOT_FOUND})
    async def recommend_batch(request: Request, body: BatchRequest):
        """Recommendations for many users in one call (404 naming every unknown user)."""
        check_n(body.n)
        if len(body.user_ids) > config.max_batch_users:
            raise HTTPException(422, f"at most {config.max_batch_users} user_ids per batch, got {len(body.user_ids)}")
        state = request.app.state.serving
        state.refresh_events()
        served = state.holder.current
        lists = service.recommend_users(served, state.live, body.user_ids, body.n, body.exclude_seen, body.filter)
        return json_response({"results": [{"user_id": served.public_id(u), "items": items,
                                           "model_version": served.version}
                                          for u, items in zip(body.user_ids, lists)],
                              "model_version": served.version})

    return router
