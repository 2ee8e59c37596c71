"""One JSON encoder and the JSON error bodies every variant shares."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

# Compact separators: every variant's bodies are byte-for-byte the same shape.
dumps = functools.partial(json.dumps, separators=(",", ":"))


def json_response(data: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(data), status=status, headers=headers,
                        content_type="application/json")


def error_response(status: int, error: str, detail: str | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    body: dict[str, str] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return json_response(body, status=status, headers=headers)
