"""GET /healthz (the process answers), /readyz (model loaded, store reachable), /metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from recforge.serving.config import ServeConfig
from recforge.serving.schemas import Health, Ready


def build(config: ServeConfig) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Health)
    async def healthz():
        """Liveness: the process is up and answering."""
        return {"status": "ok"}

    @router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
    def readyz(request: Request):
        """Readiness: a verified model is loaded and the event store answers."""
        state = request.app.state.serving
        served = state.holder.current
        try:
            events = state.store.count()
        except Exception:
            return JSONResponse({"status": "event store unreachable", "model": served.name,
                                 "model_version": served.version}, status_code=503)
        return {"status": "ready", "model": served.name, "model_version": served.version, "events": events}

    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request):
        return Response(request.app.state.serving.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
