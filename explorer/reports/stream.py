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
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import IO, Any

from explorer.model.kernel import Kernel
from explorer.model.tasks import Task, cpu_column
from explorer.reports.walk import frame_extras, verdict_json
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.marks import FrameMark, frame_marks
from explorer.walk.reliable import Verdict
from explorer.walk.unwind import Step, WalkEnd
from parsers.s390.records import PtRegs

#: Frames whose ip is a PSW, not a return address (their extra fields are not remembered).
_PSW_FRAMES = ("start_regs", "pt_regs")
_enc: Callable[[str], str] = encode_basestring_ascii  # json.dumps of a str, in C
_IP = attrgetter("ip")


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
        #: ips known to be text (see :meth:`recovered`).
        self._text: dict[int, bool] = {}

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
        gprs = ", ".join([f'"0x{g:x}"' for g in regs.gprs])
        ic = regs.int_code
        return (
            f'{{"address": "0x{regs.address:x}", {head}, "gprs": [{gprs}], '
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

    def recovered(self, walk: Any) -> str:
        """:func:`_recovered`, answered at once for a walk that ended well among ips known
        to be text (a walk that did not break has only those after its first frame)."""
        later = list(map(_IP, walk.steps[1:]))
        fine = walk.end.kind != "error"
        if fine and all(map(self._text.get, later)):
            return ""
        field = _recovered(self.kernel, walk)
        if fine and not field:
            self._text.update(dict.fromkeys(later, True))
        return field

    def __call__(self, a: TaskAnalysis) -> str:
        """One task, as ``json.dumps(analysis_json(kernel, a))``."""
        w = a.walk
        stacks = ", ".join(
            f'{_enc(r.stack_type)}: ["0x{r.begin:x}", "0x{r.end:x}"]' for r in w.regions.all
        )
        return (
            f'{_task_head(a.task)}, "era": {_enc(w.era)}, '
            f'"start": {_enc(w.start)}, "stacks": {{{stacks}}}, '
            f'"frames": {self.frames(w.steps, frame_marks(w, a.verdict))}, '
            f'"end": {self.end(w.end)}, '
            f'"verdict": {self.verdict(a.verdict)}, "livepatch": {_enc(a.livepatch)}'
            f"{self.recovered(w)}{_sanity(self.kernel, a)}}}"
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


def _recovered(kernel: Kernel, walk: Any) -> str:
    """The ``recovered`` field of a walk that broke, with its leading comma, else ''."""
    from explorer.reports.walk import recovered_field

    field = recovered_field(kernel, walk)
    return f', "recovered": {json.dumps(field["recovered"])}' if field else ""


#: Text gathered before one write: a few large writes instead of one per task (a pipe's
#: reader is woken once per write; 10,000 tasks are ~70 MB of JSON).
WRITE_CHUNK = 1 << 20


class JsonWriter:
    """A ``keep`` function for :func:`explorer.walk.analysis.analyse_all` writing each task.

    ``lines=False`` writes the items of a JSON list, each on its own line (the caller
    writes ``[`` before and, after :meth:`flush`, a newline and ``]``); ``lines=True``
    writes one task per line (JSON Lines). Nothing is kept: a call returns None. The text
    goes out in chunks of :data:`WRITE_CHUNK` characters; :meth:`flush` writes the rest.

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
        self.out = out
        self.lines = lines
        self._sep = "\n  "
        self._pending: list[str] = []
        self._size = 0

    def __call__(self, a: TaskAnalysis) -> None:
        text = self.to_json(a)
        pending = self._pending
        if self.lines:
            pending += (text, "\n")
        else:
            pending += (self._sep, text)
            self._sep = ",\n  "
        self._size += len(text)
        if self._size >= WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write what is gathered."""
        if self._pending:
            self.out.write("".join(self._pending))
            self._pending.clear()
            self._size = 0


def json_writer(
    kernel: Kernel, out: IO[str], lines: bool = False, extras: Any = None
) -> JsonWriter:
    """:class:`JsonWriter` (a ``keep`` function; call its ``flush`` after the walks)."""
    return JsonWriter(kernel, out, lines, extras)


def _sanity(kernel: Kernel, a: TaskAnalysis) -> str:
    """The ``sanity`` field of a task whose stack fails a sanity rule, else ''."""
    from explorer.walk.sanity import corrupt_field

    field = corrupt_field(kernel, a.task, a.walk)
    return f', "sanity": {json.dumps(field["sanity"])}' if field else ""
