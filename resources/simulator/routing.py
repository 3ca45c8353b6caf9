"""Request/response values and the route table of the simulator.

Handlers are plain functions ``(SimRequest) -> SimResponse``; they never touch sockets. A response can
ask the server to *misbehave* instead of answering: ``action="reset"`` closes the socket with an RST,
``action="hold"`` keeps the client waiting ``hold_s`` seconds before (trying to) answer. That keeps the
fault logic testable and lets other modules (``resources/simulator/veo.py``) add endpoints with
``ProviderSimulator.add_route`` without knowing anything about the HTTP server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ResponseAction = Literal["respond", "reset", "hold"]


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)  # named groups of the route pattern

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body or b"null")


@dataclass
class SimResponse:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: ResponseAction = "respond"
    hold_s: float = 0.0  # for action="hold": wait this long, then send the response anyway

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Mapping[str, str] | None = None, *, content_type: str = ""
    ) -> SimResponse:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        all_headers = [("content-type", content_type or "application/json")]
        all_headers += list((headers or {}).items())
        return cls(status=status, body=body, headers=all_headers)

    @classmethod
    def reset(cls) -> SimResponse:
        return cls(status=0, action="reset")

    def held(self, seconds: float) -> SimResponse:
        self.action = "hold"
        self.hold_s = seconds
        return self


RouteHandler = Callable[[SimRequest], SimResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler
    name: str = ""


class Router:
    """Ordered route table; the first route whose method and full-path regex match wins."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._lock = threading.Lock()

    def add(
        self, method: str, pattern: str, handler: RouteHandler, *, name: str = "", first: bool = False
    ) -> Route:
        route = Route(method.upper(), re.compile(pattern), handler, name or pattern)
        with self._lock:
            if first:
                self._routes.insert(0, route)
            else:
                self._routes.append(route)
        return route

    def routes(self) -> list[Route]:
        with self._lock:
            return list(self._routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """``(route, params)`` for the request, or ``None``. A path matching with another method -> 405
        is left to the caller via ``allowed_methods``."""
        for route in self.routes():
            if route.method == method.upper() and (m := route.pattern.fullmatch(path)):
                return route, {k: v for k, v in m.groupdict().items() if v is not None}
        return None

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({r.method for r in self.routes() if r.pattern.fullmatch(path)})
