"""Answers serialised once, straight to JSON bytes (no pydantic round trip on the hot path).

The bodies keep the shapes of ``schemas.py`` (which still documents them in the OpenAPI
schema); non-finite scores become ``null`` as pydantic writes them.
"""
from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def json_response(payload: Any, status_code: int = 200) -> Response:
    """``payload`` (dicts, lists, str, int, finite floats, None) as an application/json answer."""
    return Response(_encode(payload).encode(), status_code=status_code, media_type="application/json")
