"""The classroom server: PyPI ``textual-serve`` plus a token, a ``Host``/``Origin`` check, a
session limit, an idle timeout and sessions that end with their process group.

``textual-serve`` runs one explorer process per browser websocket (its ``AppService``) and
relays keys and screen updates. :class:`ClassroomServer` subclasses its ``Server``: an aiohttp
middleware refuses requests naming a foreign host or origin and requests without the token,
the index page says when the classroom is full, every websocket message is checked (sizes
clamped, one log line and the end of the session when malformed), and each session's
explorer runs in its own process group, ended (quit, SIGTERM, SIGKILL) when its websocket
goes; its slot counts until the process is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractAccessLogger
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from explorer.serve.forks import Zygote, ZygoteError
from explorer.serve.pages import foreign_page, full_page, index_page, refused_page
from explorer.serve.policy import (
    COOKIE,
    MAX_MESSAGE,
    allowed_hosts,
    clamp_size,
    host_ok,
    origin_ok,
    token_ok,
)
from explorer.training.results import ENV_SESSION

log = logging.getLogger("backchain.serve")


#: Websocket close codes: 1013 "try again later" (full), 1001 "going away" (idle),
#: 1008 "policy violation" (a malformed message).
CLOSE_FULL = 1013
CLOSE_IDLE = 1001
CLOSE_MALFORMED = 1008

#: Seconds a session's explorer gets to quit when asked, then again after SIGTERM.
GRACE = 2.0


@dataclass(frozen=True)
class ServeConfig:
    """What ``backchain serve`` was asked for.

    Attributes:
        argv: the command that runs one session's explorer.
        title: shown on the page while the session starts.
        host: address to bind.
        port: TCP port (0: any free one).
        token: needed by every request when not None.
        max_sessions: concurrent sessions at most.
        idle_timeout: seconds without input before a session ends (0: never).
        environment: extra environment of every session's process.
        verbose: log every request and refusal, not only sessions starting and ending.
        results: the exercise results file, shown to the trainer at ``/results``.
        trainer_key: what ``/results`` needs besides the token (trainees have the token).
        offered: the scenarios the classroom offers (the results list untried ones).
        zygote: the command of a warm process that forks sessions (``explorer.serve.forks``;
            its socket's descriptor is appended); None: every session starts from scratch.
    """

    argv: tuple[str, ...]
    title: str = "backchain"
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_sessions: int = 30
    idle_timeout: float = 1800.0
    environment: dict[str, str] = field(default_factory=dict)
    verbose: bool = False
    results: str | None = None
    trainer_key: str | None = None
    offered: tuple[str, ...] = ()
    zygote: tuple[str, ...] | None = None


class MalformedMessage(ValueError):
    """A websocket message that is not one the page sends."""


def parse_message(text: str) -> tuple[str, Any]:
    """One websocket message of the page: ``["stdin", str]``, ``["resize", {"width": int,
    "height": int}]`` (clamped), ``["ping", data]``, ``["blur"]``, ``["focus"]``; other
    types are returned as they are (and ignored).

    Raises:
        MalformedMessage: not JSON, not a list led by a string, or a known type with a
            wrong payload.
    """
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(envelope, list) or not envelope or not isinstance(envelope[0], str):
        raise MalformedMessage("not a list led by its type")
    kind = envelope[0]
    data = envelope[1] if len(envelope) > 1 else None
    if kind == "stdin" and not isinstance(data, str):
        raise MalformedMessage("stdin without text")
    if kind == "resize":
        size = (
            clamp_size(*(data.get(k) for k in ("width", "height")))
            if isinstance(data, dict)
            else None
        )
        if size is None:
            raise MalformedMessage("resize without an integer width and height")
        data = size
    return kind[:20], data


class SessionService(AppService):
    """One session's explorer process, in a process group of its own, forked by the zygote
    when there is one; remembers when the browser last sent input (the idle clock starts
    when the explorer first draws: a slow start is not idleness)."""

    def __init__(
        self,
        argv: Sequence[str],
        environment: dict[str, str],
        zygote: Zygote | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = tuple(argv)
        self.session_id = uuid.uuid4().hex[:12]
        self.environment = {**environment, ENV_SESSION: self.session_id}
        self.zygote = zygote
        self.last_input = time.monotonic()
        self.started = time.time()
        #: When the explorer first drew (monotonic), None until then.
        self.drawn: float | None = None
        self.forked = False
        self._ending: asyncio.Task[None] | None = None

    @staticmethod
    def base_environment(environment: dict[str, str]) -> dict[str, str]:
        """What every session's environment holds (textual-serve's and ``environment``),
        at the default size: the zygote's environment."""
        probe = AppService.__new__(AppService)
        probe.debug = False
        return {**AppService._build_environment(probe), **environment}

    async def on_data(self, payload: bytes) -> None:
        """Screen output for the browser; the first starts the idle clock."""
        if self.drawn is None:
            self.drawn = self.last_input = time.monotonic()
        await super().on_data(payload)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment.update(self.environment)
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        """The explorer, forked by the zygote, else run directly (no shell); either way the
        leader of a new process group."""
        environment = self._build_environment(width=width, height=height)
        prefix = (sys.executable, "-m", "explorer")
        if self.zygote is not None and self.zygote.ready is not False and self.argv[:3] == prefix:
            try:
                forked = await self.zygote.spawn(self.argv[3:], environment)
            except ZygoteError as error:
                log.warning("session %s: not forked (%s): started anew", self.session_id, error)
            else:
                self._process = cast(Any, forked)  # used as the Process it stands for
                self._stdin = forked.stdin
                self.forked = True
                return forked
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        """The explorer's pid (its process group's id), once started."""
        return None if self._process is None else self._process.pid

    async def send_bytes(self, data: bytes) -> bool:
        """Keys and mouse from the browser (they count as activity)."""
        self.last_input = time.monotonic()
        return await super().send_bytes(data)

    async def set_terminal_size(self, width: int, height: int) -> None:
        """A resize of the browser window (counts as activity); already clamped."""
        self.last_input = time.monotonic()
        await super().set_terminal_size(width, height)

    async def end(self) -> None:
        """Ask the explorer to quit; SIGTERM then SIGKILL its whole process group after
        :data:`GRACE` seconds each; returns once the explorer is gone (however often
        called)."""
        if self._process is None:
            return  # not started (yet): the handler ends it once it is
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        await asyncio.shield(self._ending)

    async def _end(self) -> None:
        process = self._process
        if process is None:
            return
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if process.returncode is None:
            try:  # the explorer's stdin may be full: asking must not hang
                await asyncio.wait_for(self.send_meta({"type": "quit"}), GRACE)
            except TimeoutError:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                await asyncio.wait_for(process.wait(), GRACE)
                break
            except TimeoutError:
                kill_group(process.pid, sig)
        await process.wait()
        kill_group(process.pid, signal.SIGKILL)  # whatever the explorer left in its group
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, GRACE)
            except TimeoutError:
                self._task.cancel()
            self._task = None


def kill_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid`` (nothing when it is gone)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _PathLog(AbstractAccessLogger):
    """``-v``'s access log: address, method, path (never the query: it may hold the
    token), status."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d", request.remote, request.method, request.path, response.status
        )


class ClassroomServer(Server):
    """``textual-serve``'s server with a token, a host/origin check, a session limit and an
    idle timeout.

    Args:
        config: the options of ``backchain serve``.
        announce: called once the server listens, with the port it listens on.
    """

    def __init__(self, config: ServeConfig, announce: Callable[[int], None] | None = None) -> None:
        super().__init__(
            " ".join(config.argv), host=config.host, port=config.port, title=config.title
        )
        self.config = config
        self.announce = announce
        self.hosts = allowed_hosts(config.host)
        #: Session id -> its service and websocket, from before its explorer starts until
        #: that explorer is gone.
        self.sessions: dict[str, tuple[SessionService, web.WebSocketResponse]] = {}
        #: The warm process sessions are forked from (None: each starts anew).
        self.zygote: Zygote | None = None

    @property
    def full(self) -> bool:
        """Every session slot is taken."""
        return len(self.sessions) >= self.config.max_sessions

    def initialize_logging(self) -> None:
        """One plain line per record on stderr: sessions starting and ending, problems;
        with ``verbose`` also every request and refusal."""
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO if self.config.verbose else logging.WARNING)
        log.setLevel(logging.DEBUG if self.config.verbose else logging.INFO)

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_MESSAGE)
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.get("/results", self.handle_results, name="results"),
                web.static("/static", self.statics_path, show_index=False, name="static"),
            ]
        )
        app.on_shutdown.append(self.on_shutdown)
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every request names this server in ``Host`` (and ``Origin`` when a browser sends
        one): another web page cannot reach it, nor a name rebound to this address. Every
        request but the static files needs the token (query or cookie)."""
        host, origin = request.headers.get("Host"), request.headers.get("Origin")
        if not host_ok(host, self.hosts, self.port) or not origin_ok(origin, self.hosts, self.port):
            log.debug(
                "refused %s %s: host %r origin %r", request.remote, request.path, host, origin
            )
            return web.Response(status=403, text=foreign_page(), content_type="text/html")
        if request.path.startswith("/static/"):
            return await handler(request)
        in_query = request.query.get("token")
        if not token_ok(self.config.token, in_query or request.cookies.get(COOKIE)):
            log.debug("refused %s %s: no token", request.remote, request.path)
            return web.Response(status=403, text=refused_page(), content_type="text/html")
        response = await handler(request)
        if in_query and self.config.token and not response.prepared:
            response.set_cookie(COOKIE, in_query, httponly=True, samesite="Strict")
        return response

    def serve(self, debug: bool = False) -> None:
        """Listen, announce the port, serve until SIGINT or SIGTERM; then end every session.

        Raises:
            OSError: the address cannot be bound (in use, not this machine's).
        """
        self.debug = debug
        self.initialize_logging()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        verbose = self.config.verbose
        runner = web.AppRunner(
            await self._make_app(),
            handle_signals=False,
            access_log_class=_PathLog,
            access_log=logging.getLogger("aiohttp.access") if verbose else None,
        )
        await runner.setup()
        try:
            await self._start_zygote()
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = int(runner.addresses[0][1])
            if self.announce is not None:
                self.announce(self.port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()
            for service, _websocket in list(self.sessions.values()):
                if service.pid is not None:
                    kill_group(service.pid, signal.SIGKILL)
            if self.zygote is not None:
                self.zygote.stop()

    async def _start_zygote(self) -> None:
        """Start the zygote; it warms up while the server starts listening (sessions that
        come meanwhile wait for it; they start anew if it fails)."""
        if self.config.zygote is None:
            return
        zygote = Zygote(
            self.config.zygote, SessionService.base_environment(self.config.environment)
        )
        try:
            zygote.start()
        except OSError as error:
            log.warning("the session zygote did not start (%s): sessions start anew", error)
            return
        self.zygote = zygote

    async def on_shutdown(self, app: web.Application) -> None:
        """End every session (explorers asked to quit, then their process groups killed)."""
        for _service, websocket in list(self.sessions.values()):
            await websocket.close(code=CLOSE_IDLE, message=b"the server stops")
        await asyncio.gather(*(s.end() for s, _w in list(self.sessions.values())))

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page that runs a session, or a page saying the classroom is full.

        URLs in the page are built from the request's own (checked) host, so a browser on
        another machine reaches the server by the name it used.
        """
        if self.full:
            return web.Response(
                status=503,
                text=full_page(self.config.max_sessions),
                content_type="text/html",
                headers={"Retry-After": "30"},
            )
        ws_scheme = "wss" if request.scheme == "https" else "ws"
        page = index_page(
            title=self.title,
            static_url=f"{request.scheme}://{request.host}/static/",
            websocket_url=f"{ws_scheme}://{request.host}/ws",
            font_size=min(max(to_int(request.query.get("fontsize", "16"), 16), 6), 64),
        )
        return web.Response(text=page, content_type="text/html")

    async def handle_results(self, request: web.Request) -> web.StreamResponse:
        """The trainer's results page: the results file summed up per scenario (untried ones
        too), per trainee (name and session) and answer by answer. Needs the trainer's key:
        trainees have the token, and the page tells the answers."""
        from explorer.serve.pages import results_page
        from explorer.training import results, scenarios

        config = self.config
        if config.results is None or config.trainer_key is None:
            return web.Response(status=404, text="no results file", content_type="text/plain")
        if not token_ok(config.trainer_key, request.query.get("key")):
            log.debug("refused %s /results: no trainer key", request.remote)
            return web.Response(status=403, text=refused_page(), content_type="text/html")
        try:
            attempts = results.read(config.results) if os.path.exists(config.results) else []
        except results.ResultsError as exc:
            return web.Response(status=500, text=str(exc), content_type="text/plain")
        report = results.report(attempts, config.offered, scenarios.numbers())
        return web.Response(text=results_page(report), content_type="text/html")

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One session: start its explorer, relay until the browser leaves or idles, then
        end the explorer's process group; the slot is free once the explorer is gone."""
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE)
        await websocket.prepare(request)
        if self.full:
            log.debug("refused a session from %s: %d in use", request.remote, len(self.sessions))
            await websocket.close(code=CLOSE_FULL, message=b"the classroom is full")
            return websocket
        size = clamp_size(
            to_int(request.query.get("width", "80"), 80),
            to_int(request.query.get("height", "24"), 24),
        )
        assert size is not None
        service = SessionService(
            self.config.argv,
            self.config.environment,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
            zygote=self.zygote,
        )
        self.sessions[service.session_id] = (service, websocket)
        log.info(
            "session %s started from %s (%d in use)",
            service.session_id,
            request.remote,
            len(self.sessions),
        )
        watchdog = asyncio.create_task(self._watch(service, websocket))
        try:
            await service.start(*size)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # one broken session must not stop the classroom
            log.error("session %s failed: %s", service.session_id, error)
        finally:
            watchdog.cancel()
            try:
                await service.end()
            finally:
                self.sessions.pop(service.session_id, None)
                log.info("session %s ended (%d in use)", service.session_id, len(self.sessions))
        return websocket

    async def _process_messages(  # type: ignore[override]
        self, websocket: web.WebSocketResponse, app_service: SessionService
    ) -> None:
        """Relay the page's messages; a malformed one ends the session (one log line)."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                kind, data = parse_message(message.data)
            except MalformedMessage as error:
                log.warning(
                    "session %s: malformed message (%s): ended", app_service.session_id, error
                )
                await websocket.close(code=CLOSE_MALFORMED, message=b"malformed message")
                return
            if kind == "stdin":
                await app_service.send_bytes(data.encode("utf-8", "replace"))
            elif kind == "resize":
                await app_service.set_terminal_size(*data)
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await app_service.blur()
            elif kind == "focus":
                await app_service.focus()

    async def _watch(self, service: SessionService, websocket: web.WebSocketResponse) -> None:
        """Close the websocket after ``idle_timeout`` seconds without input (counted from
        the explorer's first screen); end the explorer as soon as the websocket is closed
        (even while its handler waits on the explorer)."""
        timeout = self.config.idle_timeout
        while not websocket.closed:
            counting = timeout > 0 and service.drawn is not None
            left = service.last_input + timeout - time.monotonic() if counting else 1.0
            if left <= 0:
                log.info("session %s idle for %g s: ending it", service.session_id, timeout)
                await websocket.close(code=CLOSE_IDLE, message=b"idle: session ended")
                break
            await asyncio.sleep(min(left, 1.0))
        await service.end()
