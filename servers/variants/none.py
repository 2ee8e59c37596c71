"""The control group: login checks the password but issues nothing; everyone is `anonymous`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from servers.jsonutil import json_response
from servers.variants.base import AuthVariant, Identity

ANONYMOUS = Identity("anonymous")


class NoAuth(AuthVariant):
    name = "none"

    def __init__(self, settings: Any, redis: Any = None) -> None:
        pass

    async def issue(self, request: web.Request, user: str) -> web.Response:
        return json_response({"user": user})

    async def authenticate(self, request: web.Request) -> Identity | None:
        return ANONYMOUS
