"""A full classroom (issue 26 item 3): ``backchain serve`` with N concurrent websocket
sessions on loopback, as N browsers would open them.

Starts ``backchain serve`` on a free 127.0.0.1 port with ``--max-sessions N``, opens N
websockets at once (textual-serve's protocol, aiohttp as the tests speak it), and prints:

- first screen per session: seconds from the websocket opening until the explorer drew
  anything, and until its overview says the dump is open (`` tasks: ``); goal <= 10 s;
- key latency: every session presses Down/Up ``--keys`` times at random moments
  (``--key-gap`` apart on average); the time from a key to the first screen update after
  it, p50/p95/max over all keys of all sessions; goal p95 <= 1 s;
- memory per session: RSS (what ``ps`` says, shared pages counted in every process), PSS
  (shared pages divided among their sharers: the sum is the real total) and USS (pages
  only this session holds), per explorer process and in total, and the server's own;
- session N+1: the index page's status and title, and the websocket's close code;
- idle reaping: with input stopped, when each session's websocket is closed by the
  server's ``--idle-timeout`` and when the last explorer process is gone.

With ``--scenarios`` the first screen is the scenario picker, and then every session opens
an exercise at once (``--distinct`` different ones). ``--baseline`` runs the same classroom
first with ``serve --no-fork`` (every session's explorer started anew) and prints both side
by side. The sessions arrive ``--settle`` seconds after the server started (its zygote warms
up meanwhile; sessions that come sooner wait for it).

The machine's load average is printed before and after (a shared machine: say so with the
numbers). Everything is bounded: ``--deadline`` seconds in all, then every socket is closed
and the server stopped.

    python benchmarks/bench_classroom.py [DUMP | --scenarios NAMES] [--sessions 30]
        [--keys 10] [--key-gap 1.0] [--idle-timeout 15] [--baseline] [--distinct 1]
        [--settle 10] [--server-arg=--flag ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.serving import LOADED, children_of, drain, free_port, start, stop  # noqa: E402

#: Cursor keys as a terminal sends them.
DOWN, UP = "\x1b[B", "\x1b[A"
#: The scenario picker's first line (sessions with --scenarios ask nothing without --results).
PICKER = b"Open"
#: An exercise's check pane, once a scenario picked in the picker is open (the picker's own
#: intro says "find the failing frame" too: a redrawn picker is not an open exercise).
EXERCISE = b"exercise: find the failing frame"


@dataclass
class Session:
    """One simulated browser."""

    index: int
    ws: aiohttp.ClientWebSocketResponse | None = None
    opened: float = 0.0
    first_byte: float | None = None
    loaded: float | None = None
    latencies: list[float] = field(default_factory=list)
    last_input: float = 0.0
    unsolicited: int = 0
    missed: int = 0
    closed_code: int | None = None
    closed_at: float | None = None
    error: str | None = None


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def memory(pid: int) -> tuple[float, float, float] | None:
    """RSS, PSS and USS of ``pid`` in MB (None when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            kb[name] = int(parts[0])
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return kb.get("Rss", 0) / 1024, kb.get("Pss", 0) / 1024, uss / 1024


def cpu_seconds(pid: int) -> float:
    """User and system CPU time ``pid`` has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def sessions_of(server: int) -> dict[int, list[int]]:
    """Each session's processes, keyed by its process-group leader (a session's explorer
    runs in a process group of its own; a zygote's children do too)."""
    groups: dict[int, list[int]] = {}
    for pid in descendants(server):
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            continue
        if pgid == os.getpgid(server):
            continue  # the server's own helpers (a zygote), not a session
        groups.setdefault(pgid, []).append(pid)
    return groups


def helpers_of(server: int) -> list[int]:
    """The server's child processes in its own process group (a zygote, if any)."""
    out = []
    for pid in descendants(server):
        try:
            if os.getpgid(pid) == os.getpgid(server):
                out.append(pid)
        except ProcessLookupError:
            continue
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"min {min(values):.2f} s, p50 {percentile(values, 50):.2f} s, "
        f"p95 {percentile(values, 95):.2f} s, max {max(values):.2f} s"
    )


def start_server(args: argparse.Namespace, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    what = ["--scenarios", args.scenarios] if args.scenarios is not None else [args.dump]
    served = [
        *[w for w in what if w is not None],
        "--host",
        "127.0.0.1",
        "--max-sessions",
        str(args.sessions),
        "--idle-timeout",
        str(args.idle_timeout),
        *args.server_arg,
        *extra,
    ]
    port = free_port()
    try:
        process, _banner = start(*served, port=port, timeout=60, new_session=True)
    except AssertionError as exc:
        raise SystemExit(str(exc)) from None
    print("server: serve", " ".join(served))

    def log(line: str) -> None:
        if "Traceback" in line or "failed" in line:
            print("  server log:", line.rstrip())

    drain(process, log)
    if args.settle:
        print(f"  the trainees arrive {args.settle:g} s after the server started")
        time.sleep(args.settle)
    return process, f"127.0.0.1:{port}"


async def open_session(http: aiohttp.ClientSession, url: str, s: Session, until: bytes) -> None:
    """Open the websocket and wait for the first byte and the loaded overview."""
    s.opened = s.last_input = time.monotonic()
    try:
        s.ws = ws = await http.ws_connect(url, max_msg_size=0)
    except aiohttp.ClientError as exc:
        s.error = f"connect: {exc}"
        return
    data = b""
    while until not in data:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.BINARY:
            if s.first_byte is None:
                s.first_byte = time.monotonic() - s.opened
            data = (data + msg.data)[-4096:]
        elif msg.type != aiohttp.WSMsgType.TEXT:
            s.error = f"closed before the first screen: {msg.type.name} {msg.data}"
            return
    s.loaded = time.monotonic() - s.opened


async def press_keys(s: Session, keys: int, gap: float, rng: random.Random) -> None:
    """``keys`` cursor keys at random moments; each one's time to the next screen update."""
    ws = s.ws
    assert ws is not None
    for i in range(keys):
        await asyncio.sleep(rng.uniform(0, 2 * gap))
        while True:  # what the previous key still drew is not this key's answer
            try:
                msg = await ws.receive(timeout=0.001)
            except TimeoutError:
                break
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                s.error = f"closed while typing: {msg.type.name}"
                return
        sent = s.last_input = time.monotonic()
        await ws.send_json(["stdin", DOWN if i % 2 == 0 else UP])
        while True:
            try:
                msg = await ws.receive(timeout=10)
            except TimeoutError:
                s.missed += 1
                break
            if msg.type == aiohttp.WSMsgType.BINARY:
                s.latencies.append(time.monotonic() - sent)
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                s.error = f"closed while typing: {msg.type.name}"
                return


async def quiet(s: Session, seconds: float) -> None:
    """Count the screen updates a session sends without input (a key's latency is the time
    to the next update: that is only fair when nothing else draws)."""
    ws = s.ws
    assert ws is not None
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            return
        if msg.type == aiohttp.WSMsgType.BINARY:
            s.unsolicited += 1
        elif msg.type != aiohttp.WSMsgType.TEXT:
            return


async def wait_closed(s: Session, t0: float, limit: float) -> None:
    ws = s.ws
    assert ws is not None
    while True:
        left = t0 + limit - time.monotonic()
        if left <= 0:
            return
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            return
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            s.closed_code = msg.data if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code
            s.closed_at = time.monotonic() - s.last_input
            return


def print_memory(server: int, label: str) -> dict[str, float]:
    groups = sessions_of(server)
    per: list[tuple[float, float, float]] = []
    cpu: list[float] = []
    for leader in sorted(groups):
        total = [0.0, 0.0, 0.0]
        cpu.append(sum(cpu_seconds(pid) for pid in groups[leader]))
        for pid in groups[leader]:
            m = memory(pid)
            if m:
                total = [a + b for a, b in zip(total, m, strict=True)]
        per.append((total[0], total[1], total[2]))
    own = memory(server) or (0.0, 0.0, 0.0)
    helpers = [m for m in (memory(p) for p in helpers_of(server)) if m]
    print(f"memory {label}: {len(per)} sessions")
    if per:
        for name, i in (("RSS", 0), ("PSS", 1), ("USS", 2)):
            values = [p[i] for p in per]
            print(
                f"  per session {name}: min {min(values):.0f} MB, "
                f"median {statistics.median(values):.0f} MB, max {max(values):.0f} MB; "
                f"total {sum(values):.0f} MB"
            )
        print(
            f"  per session CPU so far: min {min(cpu):.2f} s, median "
            f"{statistics.median(cpu):.2f} s, max {max(cpu):.2f} s; total {sum(cpu):.1f} s"
        )
    print(f"  server: RSS {own[0]:.0f} MB, PSS {own[1]:.0f} MB", end="")
    if helpers:
        print(
            f"; its helpers ({len(helpers)}): RSS {sum(h[0] for h in helpers):.0f} MB, "
            f"PSS {sum(h[1] for h in helpers):.0f} MB",
            end="",
        )
    print()
    if not per:
        return {}
    total_pss = sum(p[1] for p in per) + own[1] + sum(h[1] for h in helpers)
    print(
        f"  classroom total PSS {total_pss:.0f} MB "
        f"({total_pss / len(per):.0f} MB a session, server included)"
    )
    return {
        "rss": statistics.median(p[0] for p in per),
        "pss": statistics.median(p[1] for p in per),
        "uss": statistics.median(p[2] for p in per),
        "cpu": statistics.median(cpu),
        "total_pss": total_pss,
        "total_rss": sum(p[0] for p in per) + own[0] + sum(h[0] for h in helpers),
    }


async def open_exercise(s: Session, downs: int) -> float | None:
    """In the picker: ``downs`` times Down, then Enter; seconds until the exercise is open."""
    ws = s.ws
    assert ws is not None
    for _ in range(downs):
        await ws.send_json(["stdin", DOWN])
    sent = s.last_input = time.monotonic()
    await ws.send_json(["stdin", "\r"])
    data = b""
    while EXERCISE not in data:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.BINARY:
            data = (data + msg.data)[-8192:]
        elif msg.type != aiohttp.WSMsgType.TEXT:
            s.error = f"closed while opening the exercise: {msg.type.name}"
            return None
    return time.monotonic() - sent


async def classroom(
    args: argparse.Namespace, server: subprocess.Popen[str], host: str, summary: dict[str, float]
) -> None:
    rng = random.Random(args.seed)
    until = PICKER if args.scenarios is not None else LOADED
    url = f"ws://{host}/ws?width={args.width}&height={args.height}"
    sessions = [Session(i) for i in range(args.sessions)]
    jar = aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as http:
        print(f"opening {args.sessions} sessions at once ({load()})")
        t0 = time.monotonic()
        opening = [
            asyncio.wait_for(open_session(http, url, s, until), args.first_screen_limit)
            for s in sessions
        ]
        for s, result in zip(
            sessions, await asyncio.gather(*opening, return_exceptions=True), strict=True
        ):
            if isinstance(result, TimeoutError):
                s.error = f"no first screen within {args.first_screen_limit:g} s"
            elif isinstance(result, BaseException):
                s.error = repr(result)
        print(f"  all opened in {time.monotonic() - t0:.1f} s")
        firsts = [s.first_byte for s in sessions if s.first_byte is not None]
        loads = [s.loaded for s in sessions if s.loaded is not None]
        print(f"  first byte drawn:  {spread(firsts)}")
        print(f"  overview loaded:   {spread(loads)}   (goal: every one <= 10 s)")
        within = sum(1 for v in loads if v <= 10)
        print(f"  sessions within 10 s: {within}/{args.sessions}")
        for s in sessions:
            if s.error:
                print(f"  session {s.index}: {s.error}")
        summary.update(
            within=within,
            first_p50=percentile(loads, 50),
            first_max=max(loads) if loads else float("nan"),
        )
        summary.update(
            {f"{k}_open": v for k, v in print_memory(server.pid, "with every screen open").items()}
        )
        if args.scenarios is not None:
            ready = [s for s in sessions if s.ws is not None and s.loaded is not None]
            print(
                f"opening an exercise in each of {len(ready)} sessions at once "
                f"({args.distinct} different ones)"
            )
            times = await asyncio.gather(
                *(open_exercise(s, s.index % args.distinct) for s in ready)
            )
            opened = [t for t in times if t is not None]
            print(f"  exercise open: {spread(opened)}")
            for s in ready:
                if s.error:
                    print(f"  session {s.index}: {s.error}")
            summary.update(exercise_max=max(opened) if opened else float("nan"))
            print_memory(server.pid, "with every exercise open")

        # Session N+1: the polite page and the websocket refused.
        async with http.get(f"http://{host}/") as r:
            page = await r.text()
            title = page.split("<h1>")[1].split("</h1>")[0] if "<h1>" in page else page[:60]
            print(f"session {args.sessions + 1}: index page HTTP {r.status}, {title!r}")
        extra = await http.ws_connect(url)
        msg = await extra.receive(timeout=10)
        print(f"session {args.sessions + 1}: websocket closed with {msg.data} {msg.extra!r}")
        await extra.close()

        live = [s for s in sessions if s.ws is not None and s.loaded is not None]
        await asyncio.gather(*(quiet(s, 3.0) for s in live))
        print(
            f"  screen updates without input in 3 s: {sum(s.unsolicited for s in live)} "
            f"(in {sum(1 for s in live if s.unsolicited)} of {len(live)} sessions)"
        )
        print(
            f"typing: {args.keys} keys in each of {len(live)} sessions, ~{args.key_gap:g} s apart"
        )
        t1 = time.monotonic()
        await asyncio.gather(*(press_keys(s, args.keys, args.key_gap, rng) for s in live))
        lat = [v for s in live for v in s.latencies]
        print(f"  {len(lat)} keys in {time.monotonic() - t1:.1f} s ({load()})")
        summary.update(
            key_p50=percentile(lat, 50) * 1000,
            key_p95=percentile(lat, 95) * 1000,
            key_max=max(lat, default=float("nan")) * 1000,
        )
        if lat:
            print(
                f"  key latency: p50 {percentile(lat, 50) * 1000:.0f} ms, "
                f"p95 {percentile(lat, 95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms "
                "(goal: p95 <= 1000 ms)"
            )
        missed = sum(s.missed for s in live)
        if missed:
            print(f"  {missed} keys drew nothing within 10 s")
        for s in live:
            if s.error:
                print(f"  session {s.index}: {s.error}")
        summary.update(
            {f"{k}_typed": v for k, v in print_memory(server.pid, "after typing").items()}
        )

        if args.idle_timeout > 0:
            t2 = time.monotonic()
            print(f"idle: no input from now; --idle-timeout {args.idle_timeout:g} s")
            await asyncio.gather(
                *(wait_closed(s, t2, args.idle_timeout + 30) for s in live if s.ws is not None)
            )
            closed = [s.closed_at for s in live if s.closed_at is not None]
            codes = sorted({s.closed_code for s in live if s.closed_at is not None}, key=str)
            print(f"  {len(closed)}/{len(live)} sessions closed by the server, codes {codes}")
            summary.update(reaped=len(closed))
            if closed:
                print(f"  closed {spread(closed)} after the session's last input")
            for _ in range(300):
                if not sessions_of(server.pid):
                    break
                await asyncio.sleep(0.1)
            left = sessions_of(server.pid)
            summary.update(left=len(left))
            print(
                f"  explorer processes left {time.monotonic() - t2:.1f} s after the last input: "
                f"{len(left)}"
            )
        for s in sessions:
            if s.ws is not None and not s.ws.closed:
                await s.ws.close()


def run(args: argparse.Namespace, extra: list[str]) -> dict[str, float]:
    """One classroom: a server (with ``extra`` arguments), its sessions, then it stops."""
    summary: dict[str, float] = {}
    server, host = start_server(args, extra)
    try:
        asyncio.run(asyncio.wait_for(classroom(args, server, host, summary), args.deadline))
    except TimeoutError:
        print(f"stopped at the --deadline of {args.deadline:g} s")
    finally:
        stop(server, group=True)
    return summary


#: The side-by-side table: (label, summary key, format).
ROWS = (
    ("sessions with a first screen <= 10 s", "within", "{:.0f}"),
    ("first screen p50, s", "first_p50", "{:.2f}"),
    ("first screen max, s (goal <= 10)", "first_max", "{:.2f}"),
    ("exercise open max, s", "exercise_max", "{:.2f}"),
    ("key latency p50, ms", "key_p50", "{:.0f}"),
    ("key latency p95, ms (goal <= 1000)", "key_p95", "{:.0f}"),
    ("CPU a session to its first screen, s", "cpu_open", "{:.2f}"),
    ("RSS a session (median), MB", "rss_typed", "{:.0f}"),
    ("PSS a session (median), MB", "pss_typed", "{:.0f}"),
    ("USS a session (median), MB", "uss_typed", "{:.0f}"),
    ("total RSS, server included, MB", "total_rss_typed", "{:.0f}"),
    ("total PSS, server included, MB", "total_pss_typed", "{:.0f}"),
    ("sessions reaped when idle", "reaped", "{:.0f}"),
)


def table(runs: dict[str, dict[str, float]]) -> None:
    names = list(runs)
    print()
    print(f"{'':40}" + "".join(f"{n:>16}" for n in names))
    for label, key, form in ROWS:
        if not any(key in r for r in runs.values()):
            continue
        cells = [form.format(runs[n][key]) if key in runs[n] else "-" for n in names]
        print(f"{label:40}" + "".join(f"{c:>16}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", nargs="?", help="dump every session opens (default: the sample)")
    parser.add_argument("--scenarios", help="serve the scenario picker of these scenarios")
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--keys", type=int, default=10, help="keys each session presses")
    parser.add_argument("--key-gap", type=float, default=1.0, help="mean seconds between keys")
    parser.add_argument("--idle-timeout", type=float, default=15.0, help="0: skip the idle phase")
    parser.add_argument("--width", type=int, default=120)
    parser.add_argument("--height", type=int, default=40)
    parser.add_argument("--first-screen-limit", type=float, default=120.0)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds in all, at most")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds between the server's start and the sessions (its zygote warms up)",
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=1,
        help="with --scenarios: how many different exercises the sessions open (1: all the same)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first the same classroom with --no-fork (every session started anew), then "
        "forked sessions; a table compares them",
    )
    parser.add_argument(
        "--server-arg", action="append", default=[], help="one more argument for serve"
    )
    args = parser.parse_args()
    if args.scenarios is None and args.dump is None:
        from explorer.training.bundled import default_sample

        args.dump = default_sample()
    print(f"before: {load()}")
    runs: dict[str, dict[str, float]] = {}
    if args.baseline:
        runs["--no-fork"] = run(args, ["--no-fork"])
        print(f"between: {load()}")
    runs["forked"] = run(args, [])
    print(f"after: {load()}")
    table(runs)


if __name__ == "__main__":
    main()
