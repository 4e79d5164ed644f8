"""GET /v1/similar-items/{item_id}."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request

from recforge.serving import service
from recforge.serving.config import ServeConfig
from recforge.serving.schemas import Problem, SimilarItems


def build(config: ServeConfig) -> APIRouter:
    router = APIRouter(tags=["items"])

    @router.get("/v1/similar-items/{item_id}", response_model=SimilarItems,
                responses={404: {"model": Problem, "description": "unknown item"}})
    async def similar_items(request: Request, item_id: str,
                            n: int = Query(10, ge=1, le=config.max_n, description="how many items")):
        """The n items most similar to an item (never itself)."""
        served = request.app.state.serving.holder.current
        try:
            items = service.similar_items(served, item_id, n)
        except NotImplementedError:
            raise HTTPException(501, f"{served.name} has no notion of item similarity") from None
        return {"item_id": served.public_id(item_id), "items": items, "model_version": served.version}

    return router
