"""Sessions forked from a warm process (a *zygote*) instead of started from nothing.

A session's explorer spends most of its start importing Textual and the explorer, and
opening the dump; with 30 sessions starting at once on two cores that is the whole wait.
The zygote does it once: it imports, opens the served dump, then forks one child per
session. A child starts with every module imported and the dump open, and shares those
pages with the zygote and every other session until it writes them (copy on write).

Two halves, one protocol over a ``SOCK_SEQPACKET`` Unix socket pair (one message a request,
file descriptors passed with ``SCM_RIGHTS``):

- :func:`serve_forks`, in the zygote: each request is an argv and an environment plus the
  session's stdin, stdout and stderr; the zygote forks, the child becomes the leader of a
  new session and process group, takes the three descriptors as 0, 1 and 2, sets the
  environment and runs the command; the zygote answers the child's pid and a pidfd.
- :class:`Zygote`, in the server: starts the zygote, asks it for sessions
  (:meth:`Zygote.spawn`), and gives each as a :class:`ForkedProcess`, which the server
  uses as it uses an ``asyncio.subprocess.Process``.

The zygote ignores ``SIGCHLD`` (the kernel reaps its children); the server learns that a
session ended from the pidfd, which stays valid after the child is reaped. The zygote quits
when the server's end of the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("backchain.serve")

#: The largest request or reply (an argv and a whole environment).
MAX_REQUEST = 256 * 1024
#: Seconds the zygote may take to import and open the dump before the server gives up on it.
READY_TIMEOUT = 120.0

_READY = b"ready"


class ZygoteError(RuntimeError):
    """The zygote is gone or did not answer; the caller starts the session itself."""


# -- the zygote's side --------------------------------------------------------------------------


def serve_forks(channel: socket.socket, run: Callable[[list[str]], int]) -> None:
    """Answer fork requests on ``channel`` until it closes; a child runs ``run(argv)`` and
    exits with what it returns (never returns here in a child).

    The caller has imported and opened what the children share. This process must have one
    thread when it forks (a child of a threaded process may inherit a held lock).
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's: it closes the socket
    gc.collect()
    gc.freeze()  # what is here now stays put: the collector never writes those pages
    channel.sendall(_READY)
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(channel, MAX_REQUEST, 3)
        except OSError:
            return
        if not data:
            for fd in fds:
                os.close(fd)
            return
        try:
            request = json.loads(data)
            argv = [str(a) for a in request["argv"]]
            environment = {str(k): str(v) for k, v in request["env"].items()}
            if len(fds) != 3:
                raise ValueError(f"{len(fds)} descriptors, not 3")
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            for fd in fds:
                os.close(fd)
            channel.sendall(json.dumps({"error": f"bad request: {exc}"}).encode())
            continue
        threads = threading.active_count()
        if threads != 1:
            for fd in fds:
                os.close(fd)
            channel.sendall(json.dumps({"error": f"{threads} threads: cannot fork"}).encode())
            continue
        pid = os.fork()
        if pid == 0:
            _child(channel, fds, argv, environment, run)  # never returns
        for fd in fds:
            os.close(fd)
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone (and reaped)
            channel.sendall(json.dumps({"pid": pid, "gone": True}).encode())
            continue
        try:
            socket.send_fds(channel, [json.dumps({"pid": pid}).encode()], [pidfd])
        finally:
            os.close(pidfd)


def _child(
    channel: socket.socket,
    fds: list[int],
    argv: list[str],
    environment: Mapping[str, str],
    run: Callable[[list[str]], int],
) -> None:
    """In the forked child: become a session of its own, take the three descriptors as
    stdin, stdout and stderr, and run the command; always ends the process."""
    status = 1
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts
        # SIGPIPE stays ignored, as Python starts it: a write to a closed pipe raises.
        channel.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(environment)
        import random

        random.seed()
        sys.argv = ["backchain", *argv]
        status = run(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


# -- the server's side ----------------------------------------------------------------------------


class ForkedProcess:
    """A session forked by the zygote, as the server uses an ``asyncio.subprocess.Process``:
    ``pid``, ``stdin`` (a writer), ``stdout`` and ``stderr`` (readers), ``wait()`` and
    ``returncode``. The server is not its parent, so the exit status is not known:
    ``returncode`` is 0 once it ended."""

    def __init__(
        self,
        pid: int,
        pidfd: int | None,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._ended = asyncio.Event()
        self._pidfd = pidfd
        if pidfd is None:
            self._exited()
        else:
            asyncio.get_running_loop().add_reader(pidfd, self._exited)

    def _exited(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.returncode = 0
        self._ended.set()
        if not self.stdin.is_closing():
            self.stdin.close()

    async def wait(self) -> int:
        """Wait until the process has ended."""
        await self._ended.wait()
        return 0


class Zygote:
    """The server's handle on its zygote process.

    Args:
        argv: the command that runs the zygote; it is given the socket's descriptor number
            as its last argument, answers ``ready`` once warm, then :func:`serve_forks`.
        environment: the zygote's environment (what every session's has in common:
            modules read some of it when imported).
    """

    def __init__(self, argv: Sequence[str], environment: Mapping[str, str]) -> None:
        self.argv = tuple(argv)
        self.environment = dict(environment)
        self.process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._lock = asyncio.Lock()
        self._warming: asyncio.Task[bool] | None = None
        #: True once warm, False once failed or stopped, None while warming.
        self.ready: bool | None = None

    def start(self) -> None:
        """Start the zygote; it warms up meanwhile (:meth:`wait_ready`). Call it with the
        event loop running."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [*self.argv, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=self.environment,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._channel = ours
        self._warming = asyncio.ensure_future(self._warm_up(READY_TIMEOUT))

    async def _warm_up(self, timeout: float) -> bool:
        channel = self._channel
        assert channel is not None
        try:
            answer = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(channel, 64), timeout
            )
        except (TimeoutError, OSError):
            answer = b""
        if self.ready is None:
            self.ready = answer == _READY
            if not self.ready:
                log.warning("the session zygote did not start: sessions start anew")
                self.stop()
        return bool(self.ready)

    async def wait_ready(self) -> bool:
        """Wait until the zygote is warm (sessions that come meanwhile wait for it: it is
        quicker than a start anew); False when it failed or was stopped."""
        warming = self._warming
        if warming is None:
            return False
        try:
            return await asyncio.shield(warming)
        except asyncio.CancelledError:
            if warming.cancelled():  # stopped while warming
                return False
            raise

    async def spawn(self, argv: Sequence[str], environment: Mapping[str, str]) -> ForkedProcess:
        """A new session running ``argv`` (the command's arguments) in ``environment``.

        Raises:
            ZygoteError: the zygote is not running or refused; start the session otherwise.
        """
        if not await self.wait_ready() or self._channel is None:
            raise ZygoteError("no zygote")
        loop = asyncio.get_running_loop()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        theirs = [stdin_r, stdout_w, stderr_w]
        ours = [stdin_w, stdout_r, stderr_r]
        try:
            request = json.dumps({"argv": list(argv), "env": dict(environment)}).encode()
            async with self._lock:
                reply, fds = await self._ask(loop, request, theirs)
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        try:
            answer = json.loads(reply)
            if "error" in answer:
                raise ZygoteError(str(answer["error"]))
            pid = int(answer["pid"])
        except BaseException:
            for fd in ours + fds:
                os.close(fd)
            raise
        pidfd = fds[0] if fds else None
        for fd in fds[1:]:
            os.close(fd)
        return ForkedProcess(
            pid,
            pidfd,
            await _writer(loop, stdin_w),
            await _reader(loop, stdout_r),
            await _reader(loop, stderr_r),
        )

    async def _ask(
        self, loop: asyncio.AbstractEventLoop, request: bytes, fds: list[int]
    ) -> tuple[bytes, list[int]]:
        channel = self._channel
        assert channel is not None
        try:
            await _wait_writable(loop, channel)
            socket.send_fds(channel, [request], fds)
            await _wait_readable(loop, channel)
            reply, got, _flags, _addr = socket.recv_fds(channel, MAX_REQUEST, 1)
        except OSError as exc:
            self.stop()
            raise ZygoteError(f"the zygote is gone: {exc}") from None
        if not reply:
            self.stop()
            raise ZygoteError("the zygote is gone")
        return reply, got

    def stop(self) -> None:
        """Close the socket (the zygote quits); its sessions go on."""
        self.ready = False
        warming = self._warming
        if warming is not None and not warming.done():
            try:
                current = asyncio.current_task()
            except RuntimeError:  # no event loop running
                current = None
            if warming is not current:
                warming.cancel()
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is not None:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait_readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    future: asyncio.Future[None] = loop.create_future()
    loop.add_reader(sock.fileno(), _settle, future)
    try:
        await future
    finally:
        loop.remove_reader(sock.fileno())


async def _wait_writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    future: asyncio.Future[None] = loop.create_future()
    loop.add_writer(sock.fileno(), _settle, future)
    try:
        await future
    finally:
        loop.remove_writer(sock.fileno())


async def _reader(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=2**16, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", 0))
    return reader


async def _writer(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamWriter:
    pipe = os.fdopen(fd, "wb", 0)
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(loop=loop), pipe
    )
    return asyncio.StreamWriter(transport, protocol, None, loop)


def channel_of(argument: str) -> socket.socket:
    """The zygote's end of the socket, from the descriptor number it was given."""
    return socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=int(argument))


__all__ = [
    "ForkedProcess",
    "Zygote",
    "ZygoteError",
    "channel_of",
    "serve_forks",
]
