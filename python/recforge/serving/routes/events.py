"""POST /v1/events: durable ingestion; the events are the users' history from the next request."""
from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request

from recforge.serving import service
from recforge.serving.config import ServeConfig
from recforge.serving.schemas import EventBatch, EventsAccepted, Problem


def build(config: ServeConfig) -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.post("/v1/events", response_model=EventsAccepted,
                 responses={422: {"model": Problem, "description": "invalid events"}})
    def post_events(request: Request, body: EventBatch):
        """Store a batch of (user, item, value, timestamp) events in one transaction; the answer
        comes after the commit, so an acknowledged event survives a crash of the server."""
        if len(body.events) > config.max_events_per_request:
            raise HTTPException(422, f"at most {config.max_events_per_request} events per request, "
                                     f"got {len(body.events)}")
        state = request.app.state.serving
        rows = service.event_rows(state.holder.current, body.events, int(time.time()))
        ids = state.store.append(rows)
        state.metrics.events.inc(len(ids))
        state.events_stored()       # stored already: a failing read must not turn it into an error
        state.fitter.nudge()
        return {"accepted": len(ids), "first_id": ids[0], "last_id": ids[-1]}

    return router
