"""The classroom server: PyPI ``textual-serve`` plus a token, a session limit and an idle
timeout.

``textual-serve`` runs one explorer process per browser websocket (its ``AppService``) and
relays keys and screen updates. :class:`ClassroomServer` subclasses its ``Server``: an aiohttp
middleware refuses requests without the token, the index page says when the classroom is
full, and each websocket gets a watchdog that ends the session after ``idle_timeout`` seconds
without a key, click or resize from the browser.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from explorer.serve.pages import full_page, refused_page
from explorer.serve.policy import COOKIE, token_ok
from explorer.training.results import ENV_SESSION

log = logging.getLogger("backchain.serve")

#: Websocket close codes: 1013 "try again later" (full), 1001 "going away" (idle).
CLOSE_FULL = 1013
CLOSE_IDLE = 1001


@dataclass(frozen=True)
class ServeConfig:
    """What ``backchain serve`` was asked for.

    Attributes:
        command: the shell command that runs one session's explorer.
        title: shown on the page while the session starts.
        host: address to bind.
        port: TCP port (0: any free one).
        token: needed by every request when not None.
        max_sessions: concurrent sessions at most.
        idle_timeout: seconds without input before a session ends (0: never).
        environment: extra environment of every session's process.
    """

    command: str
    title: str = "backchain"
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_sessions: int = 30
    idle_timeout: float = 1800.0
    environment: dict[str, str] = field(default_factory=dict)


class SessionService(AppService):
    """One session's explorer process; remembers when the browser last sent input."""

    def __init__(self, command: str, environment: dict[str, str], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.session_id = uuid.uuid4().hex[:12]
        self.environment = {**environment, ENV_SESSION: self.session_id}
        self.last_input = time.monotonic()
        self.started = time.time()

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment.update(self.environment)
        return environment

    async def send_bytes(self, data: bytes) -> bool:
        """Keys and mouse from the browser (they count as activity)."""
        self.last_input = time.monotonic()
        return await super().send_bytes(data)

    async def set_terminal_size(self, width: int, height: int) -> None:
        """A resize of the browser window (counts as activity)."""
        self.last_input = time.monotonic()
        await super().set_terminal_size(width, height)


class ClassroomServer(Server):
    """``textual-serve``'s server with a token, a session limit and an idle timeout.

    Args:
        config: the options of ``backchain serve``.
        announce: called once the server listens, with its URL (the token included).
    """

    def __init__(self, config: ServeConfig, announce: Callable[[str], None] | None = None) -> None:
        super().__init__(config.command, host=config.host, port=config.port, title=config.title)
        self.config = config
        self.announce = announce
        self.sessions: dict[str, tuple[SessionService, web.WebSocketResponse]] = {}

    @property
    def full(self) -> bool:
        """Every session slot is taken."""
        return len(self.sessions) >= self.config.max_sessions

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every request but the static files needs the token (query or cookie)."""
        if request.path.startswith("/static/"):
            return await handler(request)
        in_query = request.query.get("token")
        if not token_ok(self.config.token, in_query or request.cookies.get(COOKIE)):
            log.warning("refused %s %s: no token", request.remote, request.path)
            return web.Response(status=403, text=refused_page(), content_type="text/html")
        response = await handler(request)
        if in_query and self.config.token and not response.prepared:
            response.set_cookie(COOKIE, in_query, httponly=True, samesite="Strict")
        return response

    async def on_startup(self, app: web.Application) -> None:
        """Nothing (textual-serve prints its logo here; :meth:`serve` announces the URL once
        the socket listens)."""

    def serve(self, debug: bool = False) -> None:
        """Listen, announce the URL, serve until SIGINT or SIGTERM; then end every session.

        Raises:
            OSError: the address cannot be bound (in use, not this machine's).
        """
        self.debug = debug
        self.initialize_logging()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        runner = web.AppRunner(await self._make_app(), handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            if self.announce is not None:
                self.announce(self.public_url)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every session (their explorers are told to quit)."""
        for _service, websocket in list(self.sessions.values()):
            await websocket.close(code=CLOSE_IDLE, message=b"the server stops")

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page that runs a session, or a page saying the classroom is full.

        URLs in the page are built from the request's own host, so a browser on another
        machine reaches the server by the name it used.
        """
        if self.full:
            return web.Response(
                status=503,
                text=full_page(self.config.max_sessions),
                content_type="text/html",
                headers={"Retry-After": "30"},
            )
        base = f"{request.scheme}://{request.host}"
        ws_scheme = "wss" if request.scheme == "https" else "ws"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{ws_scheme}://{request.host}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One session: start its explorer, relay until the browser leaves or idles."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        if self.full:
            log.warning("refused a session from %s: %d in use", request.remote, len(self.sessions))
            await websocket.close(code=CLOSE_FULL, message=b"the classroom is full")
            return websocket
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service = SessionService(
            self.command,
            self.config.environment,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions[service.session_id] = (service, websocket)
        in_use = len(self.sessions)
        log.info("session %s from %s (%d in use)", service.session_id, request.remote, in_use)
        watchdog = asyncio.create_task(self._idle_watch(service, websocket))
        try:
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # one broken session must not stop the classroom
            log.exception(error)
        finally:
            watchdog.cancel()
            await service.stop()
            self.sessions.pop(service.session_id, None)
            log.info("session %s ended (%d in use)", service.session_id, len(self.sessions))
        return websocket

    async def _idle_watch(self, service: SessionService, websocket: web.WebSocketResponse) -> None:
        """Close the websocket after ``idle_timeout`` seconds without input."""
        timeout = self.config.idle_timeout
        if timeout <= 0:
            return
        while not websocket.closed:
            left = service.last_input + timeout - time.monotonic()
            if left <= 0:
                log.info("session %s idle for %g s: ending it", service.session_id, timeout)
                await websocket.close(code=CLOSE_IDLE, message=b"idle: session ended")
                return
            await asyncio.sleep(left)
