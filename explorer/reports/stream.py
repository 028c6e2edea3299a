"""``check --json`` and ``--jsonl`` at the speed of the text report.

Each task's JSON is written straight from the walk's records with string templates;
strings that repeat across frames and tasks (symbols, the PSW part of pt_regs, a frame's
stack/reliable/how, the verdict) are encoded once and remembered. No dict of strings is
built per frame, and the pure-Python streaming encoder of ``json.dump`` is not used.

The text is byte for byte ``json.dumps(explorer.reports.walk.analysis_json(kernel, a))``
(tests/test_stream.py compares the two on every bundled real sample): a field added to
``analysis_json``/``step_json``/``pt_regs_json`` must be added here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import chain
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import IO, Any

from explorer.model.kernel import Kernel
from explorer.model.tasks import Task, cpu_column
from explorer.reports.printable import unescaped
from explorer.reports.walk import frame_extras, verdict_json
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.marks import FrameMark, failing_frame, frame_marks
from explorer.walk.reliable import Verdict
from explorer.walk.sanity import stack_sanity
from explorer.walk.unwind import Step, WalkEnd
from parsers.s390.records import PtRegs

#: Frames whose ip is a PSW, not a return address (their extra fields are not remembered).
_PSW_FRAMES = ("start_regs", "pt_regs")
_enc: Callable[[str], str] = encode_basestring_ascii  # json.dumps of a str, in C
_SP = attrgetter("sp")
_REGS = attrgetter("regs")
#: All a frame's JSON depends on but its ``sp``, when it has no pt_regs and its ip is a
#: return address (``how`` not in :data:`_PSW_FRAMES`): see :meth:`TaskJson.task_frames`.
_SHAPE = attrgetter("index", "ip", "raw_ip", "how", "reliable", "stack.stack_type", "recovered_by")
#: Characters of remembered stack templates (:meth:`TaskJson.task_frames`) at most: a dump
#: whose stacks all differ is written frame by frame past it, in bounded memory.
STACK_BUDGET = 8 << 20


def _jstr(value: str | None) -> str:
    return "null" if value is None else _enc(value)


class TaskJson:
    """Turns :class:`~explorer.walk.analysis.TaskAnalysis` into one line of JSON text.

    Args:
        kernel: the dump's kernel (symbols).
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._symbols: dict[int, str] = {}
        self._middles: dict[tuple[str, bool, str], str] = {}
        self._psws: dict[tuple[int, int], str] = {}
        self._tails: dict[tuple[str, int, int | None, bool], str] = {}
        self._verdicts: dict[tuple[Any, ...], str] = {}
        self._calls: dict[tuple[int, str], str] = {}
        #: A return-address frame's JSON from "ip" to its extras, by (ip, stack, reliable, how).
        self._chunks: dict[tuple[int, str, bool, str], str] = {}
        self._mark_text: dict[str, str] = {}
        #: A whole stack's frames as the pieces between its sps, by its shape (() none).
        self._stacks: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._budget = STACK_BUDGET

    def symbol(self, address: int) -> str:
        """``symbol`` of an address as JSON text (``null`` when unknown)."""
        text = self._symbols.get(address)
        if text is None:
            text = self._symbols[address] = _jstr(self.kernel.symbolize(address))
        return text

    def pt_regs(self, regs: PtRegs) -> str:
        """``json.dumps(pt_regs_json(kernel, regs))``."""
        psw = regs.psw
        key = (psw.mask, psw.addr)
        head = self._psws.get(key)
        if head is None:
            user = regs.user_mode
            head = self._psws[key] = (
                f'"psw": {{"mask": "0x{psw.mask:x}", "addr": "0x{psw.addr:x}", '
                f'"bits": {_enc(psw.describe())}, "user_mode": {"true" if user else "false"}, '
                f'"symbol": {"null" if user else self.symbol(psw.addr)}}}'
            )
        user = regs.user_mode
        tkey = (regs.layout, regs.flags, regs.last_break, user)
        tail = self._tails.get(tkey)
        if tail is None:
            flags = ", ".join(_enc(f) for f in regs.flag_names)
            lb = regs.last_break
            tail = self._tails[tkey] = (
                f'"flags": [{flags}], "last_break": '
                + ("null" if lb is None else f'"0x{lb:x}"')
                + ', "last_break_symbol": '
                + (self.symbol(lb) if lb and not user else "null")
                + "}"
            )
        # unsigned words: hex(g) is f"0x{g:x}"
        gprs = f'["{_QCQ.join(map(hex, regs.gprs))}"]' if regs.gprs else "[]"
        ic = regs.int_code
        return (
            f'{{"address": "0x{regs.address:x}", {head}, "gprs": {gprs}, '
            f'"orig_gpr2": "0x{regs.orig_gpr2:x}", "int_code": "0x{ic:x}", '
            f'"ilc": {ic >> 16}, "code": "0x{ic & 0xFFFF:x}", {tail}'
        )

    def extras(self, s: Step) -> str:
        """The fields :func:`explorer.reports.walk.frame_extras` adds to a frame; remembered per
        (ip, how) for return-address frames, whose fields depend on those only."""
        key = (s.ip, s.how)
        text = self._calls.get(key)
        if text is None:
            fields = frame_extras(self.kernel, s)
            text = "".join(f", {_enc(k)}: {json.dumps(v)}" for k, v in fields.items())
            if s.how not in _PSW_FRAMES:
                self._calls[key] = text
        return text

    def frames(self, steps: tuple[Step, ...], marks: Sequence[FrameMark] = ()) -> str:
        """The frames as ``json.dumps([step_json(kernel, s) for s in steps])``; with
        ``marks`` (:func:`explorer.walk.marks.frame_marks`) each frame's ``mark`` and
        ``failing_rule`` follow, as ``analysis_json`` adds them."""
        symbols = self._symbols
        middles = self._middles
        calls = self._calls
        chunks = self._chunks
        mark_text = self._mark_text
        out = []
        for s in steps:
            ip = s.ip
            regs = s.regs
            # A return-address frame without pt_regs: all but index and sp repeat across tasks.
            plain = (regs is None or not regs.address) and s.raw_ip == ip
            if plain:
                ckey = (ip, s.stack.stack_type, s.reliable, s.how)
                chunk = chunks.get(ckey)
                if chunk is not None:
                    tail = "}"
                    if s.index < len(marks):
                        m = marks[s.index]
                        if m.rule is None:  # by the mark's text: a str hashes once
                            known = mark_text.get(m.mark)
                            if known is None:
                                known = mark_text[m.mark] = self.mark(m) + "}"
                            tail = known
                        else:
                            tail = self.mark(m) + "}"
                    out.append(f'{{"index": {s.index}, "sp": "0x{s.sp:x}", "ip": {chunk}{tail}')
                    continue
            sym = symbols.get(ip)
            if sym is None:
                sym = self.symbol(ip)
            key = (s.stack.stack_type, s.reliable, s.how)
            mid = middles.get(key)
            if mid is None:
                mid = middles[key] = (
                    f'"stack": {_enc(key[0])}, "reliable": {"true" if key[1] else "false"}, '
                    f'"how": {_enc(key[2])}'
                )
            text = (
                f'{{"index": {s.index}, "sp": "0x{s.sp:x}", "ip": "0x{ip:x}", "symbol": {sym}, '
                f'{mid}, "pt_regs": '
                + (self.pt_regs(regs) if regs is not None and regs.address else "null")
            )
            if s.raw_ip != ip:
                text += f', "raw_ip": "0x{s.raw_ip:x}", "recovered_by": {_jstr(s.recovered_by)}'
            call = calls.get((ip, s.how))
            if call is None:
                call = self.extras(s)
            elif plain:
                chunks[(ip, key[0], key[1], key[2])] = (
                    f'"0x{ip:x}", "symbol": {sym}, {mid}, "pt_regs": null{call}'
                )
            if s.index < len(marks):
                call += self.mark(marks[s.index])
            out.append(text + call + "}")
        return f"[{', '.join(out)}]"

    def task_frames(self, walk: Any, verdict: Verdict) -> str:
        """``frames`` of one task, as :meth:`frames` writes them with the walk's marks.

        Thousands of tasks sleep in the same stack: frames without pt_regs whose ips are
        return addresses differ from one task to the next in their ``sp`` only. Such a
        stack's text is made once, by :meth:`frames`, and kept as the pieces between its
        sps, remembered by all the rest it depends on: each frame's :data:`_SHAPE` and the
        failing frame the marks follow (:func:`explorer.walk.marks.failing_frame`). A task
        then costs one join of those pieces with its sps (``hex(sp)`` is ``f"0x{sp:x}"``).
        """
        steps = walk.steps
        if any(map(_REGS, steps)):  # registers of the task's own: frame by frame
            return self.frames(steps, frame_marks(walk, verdict))
        key = (failing_frame(verdict), *map(_SHAPE, steps))
        pieces = self._stacks.get(key)
        if pieces is None:
            pieces = self._pieces(steps, frame_marks(walk, verdict))
            size = sum(map(len, pieces))
            if size <= self._budget:
                self._budget -= size
                self._stacks[key] = pieces
        if not pieces:
            return self.frames(steps, frame_marks(walk, verdict))
        return (
            "".join(chain.from_iterable(zip(pieces, map(hex, map(_SP, steps)), strict=False)))
            + pieces[-1]
        )

    def _pieces(self, steps: tuple[Step, ...], marks: Sequence[FrameMark]) -> tuple[str, ...]:
        """:meth:`frames` of ``steps`` cut at each sp's ``0x...``: one piece more than
        steps; () when a frame's ip is a PSW's (its fields depend on more)."""
        if any(s.how in _PSW_FRAMES for s in steps):
            return ()
        pieces = []
        tail = "["
        for s in steps:
            text = self.frames((s,), marks)[1:-1]
            head = f'{{"index": {s.index}, "sp": "'
            sp = hex(s.sp)
            assert text.startswith(head + sp + '"'), text
            pieces.append(tail + head)
            tail = text[len(head) + len(sp) :] + ", "
        pieces.append((tail[:-2] if steps else tail) + "]")
        return tuple(pieces)

    @staticmethod
    def mark(m: FrameMark) -> str:
        """A frame's ``mark`` and ``failing_rule`` fields (with their leading comma)."""
        text = f', "mark": "{m.mark}"'
        if m.rule:
            text += f', "failing_rule": {_enc(m.rule)}'
        return text

    def end(self, end: WalkEnd) -> str:
        """``json.dumps(end_json(kernel, end))``."""
        return (
            f'{{"kind": {_enc(end.kind)}, "detail": {_jstr(end.detail)}, '
            f'"sp": "0x{end.sp:x}", "pt_regs": '
            + (self.pt_regs(end.regs) if end.regs else "null")
            + "}"
        )

    def verdict(self, v: Verdict) -> str:
        """``json.dumps(verdict_json(v))``."""
        if v.as_current is not None:
            return json.dumps(verdict_json(v))
        key = (v.reliable, v.rule, v.detail, v.frame, v.message)
        text = self._verdicts.get(key)
        if text is None:
            text = self._verdicts[key] = json.dumps(verdict_json(v))
        return text

    def __call__(self, a: TaskAnalysis) -> str:
        """One task, as ``json.dumps(analysis_json(kernel, a))``."""
        w = a.walk
        stacks = ", ".join(
            f'{_enc(r.stack_type)}: ["0x{r.begin:x}", "0x{r.end:x}"]' for r in w.regions.all
        )
        return (
            f'{_task_head(a.task)}, "era": {_enc(w.era)}, '
            f'"start": {_enc(w.start)}, "stacks": {{{stacks}}}, '
            f'"frames": {self.task_frames(w, a.verdict)}, '
            f'"end": {self.end(w.end)}, '
            f'"verdict": {self.verdict(a.verdict)}, "livepatch": {_enc(a.livepatch)}'
            f"{_recovered(self.kernel, w)}{_sanity(self.kernel, a)}}}"
        )  # one f-string: the task's text (KiBs) is copied once


def _task_head(t: Task) -> str:
    """``json.dumps(task_fields(t))`` without its closing brace (tests/test_stream.py holds
    the two equal)."""
    cpu = "null" if t.cpu is None else t.cpu
    start = "null" if t.start_time is None else t.start_time
    return (
        f'{{"pid": {t.pid}, "tgid": {t.tgid}, "ppid": {t.ppid}, "comm": {_enc(t.comm)}, '
        f'"state": {_enc(t.state)}, "cpu": {cpu}, "last_cpu": {t.last_cpu}, '
        f'"cpu_column": {_enc(cpu_column(t))}, "task": "0x{t.address:x}", '
        f'"stack": {f"{_Q}0x{t.stack:x}{_Q}" if t.stack else "null"}, '
        f'"ksp": "0x{t.ksp:x}", "kthread": {"true" if t.is_kthread else "false"}, '
        f'"idle": {"true" if t.is_idle else "false"}, "start_time_ns": {start}'
    )


_Q = '"'
_QCQ = '", "'


def _recovered(kernel: Kernel, walk: Any) -> str:
    """The ``recovered`` field of a walk that broke, with its leading comma, else ''."""
    from explorer.reports.walk import recovered_field

    field = recovered_field(kernel, walk)
    return f', "recovered": {json.dumps(field["recovered"])}' if field else ""


#: Bytes gathered before one write: a few large writes instead of one per task (a pipe's
#: reader is woken once per write; 10,000 tasks are ~85 MB of JSON).
WRITE_CHUNK = 1 << 20
#: Encodings that write JSON's ASCII characters as themselves, a byte each.
_ASCII_SAFE = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"})


class JsonWriter:
    """A ``keep`` function for :func:`explorer.walk.analysis.analyse_all` writing each task.

    ``lines=False`` writes the items of a JSON list, each on its own line (the caller
    writes ``[`` before and, after :meth:`flush`, a newline and ``]``); ``lines=True``
    writes one task per line (JSON Lines). Nothing is kept: a call returns None.

    To a text stream over a binary one (standard output), each task's text is copied
    into one buffer of :data:`WRITE_CHUNK` bytes, reused, which goes out whole when full:
    the 85 MB of 10,000 tasks then touch the same 1 MiB again and again. (Joined into a
    new string per chunk and encoded into new bytes, they took 33,000 fresh pages, each a
    page fault and a zeroed page: 0.13 s of system time.) To another stream the text is
    gathered in chunks of as many characters. :meth:`flush` writes the rest.

    Args:
        extras: a :class:`explorer.cli.debuginfo.FrameExtras`; when it adds fields (source
            lines), each task is built as a dict and completed by it instead.
    """

    def __init__(
        self, kernel: Kernel, out: IO[str], lines: bool = False, extras: Any = None
    ) -> None:
        self.to_json: Callable[[TaskAnalysis], str] = TaskJson(kernel)
        if extras is not None and extras.lines is not None:
            from explorer.reports.walk import analysis_json

            def to_json(a: TaskAnalysis) -> str:
                return json.dumps(extras.add_json(analysis_json(kernel, a), a.walk))

            self.to_json = to_json
        # Every character is printable ASCII (json's ASCII encoders), but the newlines
        # between tasks: the terminal escaping would scan the text for nothing.
        self.out = unescaped(out)
        self.binary = _binary_under(self.out)
        self.lines = lines
        self._sep = b"\n  "
        self._buffer = bytearray(WRITE_CHUNK if self.binary is not None else 0)
        self._view = memoryview(self._buffer)
        self._used = 0
        self._pending: list[str] = []
        self._size = 0

    def __call__(self, a: TaskAnalysis) -> None:
        text = self.to_json(a)
        if self.binary is None:
            self._gather(text)
            return
        data = text.encode("ascii")
        if self.lines:
            head, tail = b"", b"\n"
        else:
            head, tail = self._sep, b""
            self._sep = b",\n  "
        size = len(head) + len(data) + len(tail)
        if self._used + size > WRITE_CHUNK:
            self.flush()
            if size > WRITE_CHUNK:  # a task larger than the buffer goes out on its own
                self._write(head + data + tail)
                return
        view, at = self._view, self._used
        view[at : at + len(head)] = head
        at += len(head)
        view[at : at + len(data)] = data
        at += len(data)
        view[at : at + len(tail)] = tail
        self._used = at + len(tail)

    def _gather(self, text: str) -> None:
        """Another kind of stream: the text gathered in chunks of characters."""
        pending = self._pending
        if self.lines:
            pending += (text, "\n")
        else:
            pending += (self._sep.decode("ascii"), text)
            self._sep = b",\n  "
        self._size += len(text)
        if self._size >= WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write what is gathered."""
        if self._used:
            self._write(self._view[: self._used])
            self._used = 0
        if self._pending:
            self.out.write("".join(self._pending))
            self._pending.clear()
            self._size = 0

    def _write(self, data: bytes | memoryview) -> None:
        self.out.flush()  # what the text stream holds (the opening "[") goes first
        self.binary.write(data)


def _binary_under(out: Any) -> Any:
    """The binary stream under the text stream ``out`` when JSON's ASCII text can go to it
    as bytes (an encoding that writes ASCII as itself), else None."""
    import codecs

    binary = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None)
    if binary is None or not isinstance(encoding, str) or not hasattr(binary, "write"):
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None
    return binary if name in _ASCII_SAFE else None


def json_writer(
    kernel: Kernel, out: IO[str], lines: bool = False, extras: Any = None
) -> JsonWriter:
    """:class:`JsonWriter` (a ``keep`` function; call its ``flush`` after the walks)."""
    return JsonWriter(kernel, out, lines, extras)


def _sanity(kernel: Kernel, a: TaskAnalysis) -> str:
    """The ``sanity`` field of a task whose stack fails a sanity rule, else '': as
    ``json.dumps`` writes :func:`explorer.walk.sanity.corrupt_field`, by template."""
    s = stack_sanity(kernel, a.task, a.walk, high_water=False)
    if not s.corrupt:
        return ""
    checks = ", ".join(
        [
            f'{{"id": {_enc(c.id)}, "ok": {_LITERAL[c.ok]}, "text": {_enc(c.text)}'
            + ("}" if c.found is None else f', "found": "{c.found.hex()}"}}')
            for c in s.checks
        ]
    )
    return (
        f', "sanity": {{"end_of_stack": {_hex_or_null(s.end)}, '
        f'"magic_intact": {_LITERAL[s.magic_intact]}, "deepest_sp": {_hex_or_null(s.deepest)}, '
        f'"headroom": {"null" if s.headroom is None else s.headroom}, '
        f'"high_water": {_hex_or_null(s.high_water)}, "checks": [{checks}]}}'
    )


#: JSON of a value that is True, False or None.
_LITERAL = {True: "true", False: "false", None: "null"}


def _hex_or_null(value: int | None) -> str:
    return "null" if value is None else f'"0x{value:x}"'
