"""Livepatch exercises: a real dump whose livepatch transition is stuck (or is not), and the
question a support engineer is asked about it: which task keeps the transition from
completing, and why, in the kernel's words.

The expected answer is the kernel's own, never backchain's: before each dump the guest logged
``klp_try_switch_task()``'s dynamic-debug lines (``livepatch: klp_try_switch_task:
COMM:PID is sleeping on function F`` / ``is running`` / ``has an unreliable stack``) for its
last retry, and wrote them into the sample's ``facts.json`` (``livepatch.klp_debug_last_retry``,
see samples/build_kernel_livepatch.py). A dump with no transition in progress asks instead
whose code runs for a function two patches replace: the patch enabled last, as the kernel's
own ``enabling patch`` lines order them (its ``klp_ops`` func_stack has it on top).

``tests/test_klp_exercises.py`` checks that backchain's replay (``backchain klp``) agrees with
these answers, and that :func:`judge` accepts the kernel's answer and refuses wrong tasks,
causes and functions.

Plain Python: the catalog (:mod:`explorer.training.scenarios`) lists these after the synthetic
scenarios, when the samples are present (a checkout and an installed wheel carry them).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from explorer.training.bundled import SAMPLES_DIR
from parsers.errors import DumpError

#: What a trainee may answer for the cause, in ``explorer.livepatch.replay.CAUSES``' ids, with
#: the words the answer form shows (the kernel's own, without the names).
CAUSES = {
    "sleeping_on": "is sleeping on function F",
    "running": "is running",
    "unreliable": "has an unreliable stack",
}
#: One of the kernel's ``klp_try_switch_task()`` lines (kernel/livepatch/transition.c); a comm
#: may hold spaces and colons, the pid is the last ``:N`` before the verb.
KERNEL_LINE = re.compile(
    r"klp_try_switch_task: (?P<comm>.*):(?P<pid>\d+) "
    r"(?:is sleeping on function (?P<function>\S+)|(?P<running>is running)"
    r"|(?P<unreliable>has an unreliable stack))$"
)
_ENABLING = re.compile(r"livepatch: enabling patch '(?P<patch>[^']+)'")
_DISABLING = re.compile(r"livepatch: '(?P<patch>[^']+)': (?:starting|completing) unpatching")
NONE_WORDS = ("", "none", "-", "nobody", "no task")


@dataclass(frozen=True)
class Blocker:
    """One task the kernel could not switch at its last retry, in its own words.

    Attributes:
        pid, comm: the task.
        cause: ``sleeping_on``, ``running`` or ``unreliable`` (keys of :data:`CAUSES`).
        function: for ``sleeping_on``, the function the kernel names (the ``old_name`` of the
            patched function, whichever code is on the stack).
        line: the kernel's line, as logged (without the ``livepatch: `` prefix).
    """

    pid: int
    comm: str
    cause: str
    function: str | None
    line: str

    @property
    def text(self) -> str:
        """``pid 43 (kworker/1:1) sleeping_on busymod_work_func``."""
        return f"pid {self.pid} ({self.comm}) {self.cause}" + (
            f" {self.function}" if self.function else ""
        )


def parse_line(line: str) -> Blocker:
    """A kernel ``klp_try_switch_task`` line as a blocker.

    Raises:
        ValueError: not such a line.
    """
    text = line.removeprefix("livepatch: ")
    m = KERNEL_LINE.match(text)
    if m is None:
        raise ValueError(f"not a klp_try_switch_task line: {line!r}")
    cause = "sleeping_on" if m["function"] else "running" if m["running"] else "unreliable"
    return Blocker(int(m["pid"]), m["comm"], cause, m["function"], text)


@dataclass(frozen=True)
class KlpAnswer:
    """What the kernel says about the dump's transition.

    Attributes:
        patch: the patch in transition (None: no transition in progress).
        direction: ``patching`` or ``unpatching`` (None without a transition).
        blockers: the tasks of the kernel's last retry, in its order.
        top: for a settled dump, ``(function, patch)``: whose code runs for ``function``,
            which more than one patch replaces; None when not asked.
        patches: every loaded patch, in the kernel's enabling order (the form offers them).
    """

    patch: str | None
    direction: str | None
    blockers: tuple[Blocker, ...]
    top: tuple[str, str] | None = None
    patches: tuple[str, ...] = ()

    #: No failing frame: the catalog's listing shows a synthetic answer's frame beside it.
    frame: int | None = None

    @property
    def label(self) -> str:
        """``sleeping_on busymod_work_func`` / ``none blocks; top livepatch_sample``."""
        if self.blockers:
            return "; ".join(
                b.cause + (f" {b.function}" if b.function else "") for b in self.blockers
            )
        return "none blocks" + (f"; {self.top[0]} runs {self.top[1]}'s" if self.top else "")

    @property
    def summary(self) -> str:
        """One line: every blocking task with its cause, or nothing blocks and whose code
        runs."""
        if self.blockers:
            return "; ".join(b.text for b in self.blockers)
        return self.label

    @property
    def kernel_lines(self) -> tuple[str, ...]:
        """The kernel's words for each blocker."""
        return tuple(b.line for b in self.blockers)

    def to_json(self) -> dict[str, Any]:
        """The answer as data."""
        return {
            "label": self.label,
            "patch": self.patch,
            "direction": self.direction,
            "blockers": [
                {
                    "pid": b.pid,
                    "comm": b.comm,
                    "cause": b.cause,
                    "function": b.function,
                    "kernel_line": b.line,
                }
                for b in self.blockers
            ],
            "top": None if self.top is None else {"function": self.top[0], "patch": self.top[1]},
        }


def kernel_answer(facts: dict[str, Any], asks_top: str | None = None) -> KlpAnswer:
    """The kernel's answer from a sample's ``facts.json``: its last retry's lines, its
    transition (the patch whose ``transition`` is 1, ``enabled`` giving the direction), and
    for ``asks_top`` the patch it enabled last among those replacing that function.

    Raises:
        DumpError: the facts lack what the answer needs.
    """
    try:
        klp = facts["livepatch"]
        patches = klp["patches"]
        lines = [entry["line"] for entry in klp["klp_debug_last_retry"]]
        kernel_lines = list(klp["kernel_lines"])
    except (KeyError, TypeError) as exc:
        raise DumpError(f"facts.json has no livepatch {exc}") from None
    moving = [p for p in patches if p.get("transition") == 1]
    patch = moving[0]["name"] if moving else None
    direction = None
    if moving:
        direction = "patching" if moving[0].get("enabled") == 1 else "unpatching"
    blockers = tuple(parse_line(line) for line in lines) if moving else ()
    order = [m["patch"] for line in kernel_lines if (m := _ENABLING.match(line))]
    order = [p for p in dict.fromkeys(order) if any(q["name"] == p for q in patches)]
    top = None
    if asks_top is not None:
        touching = [
            p["name"]
            for p in patches
            if p.get("enabled") == 1
            and any(f["name"] == asks_top for o in p["objects"] for f in o["functions"])
        ]
        last = [p for p in order if p in touching]
        if not last:
            raise DumpError(f"facts.json: no enabled patch replaces {asks_top}")
        top = (asks_top, last[-1])
    return KlpAnswer(patch, direction, blockers, top, tuple(order))


@dataclass(frozen=True)
class KlpGuess:
    """What a trainee answered.

    Attributes:
        pid: the task named as blocking the transition, None for "no task blocks".
        cause: a key of :data:`CAUSES` (None with no task).
        function: for ``sleeping_on``, the function named.
        patch: whose code runs for the asked function (settled dumps).
    """

    pid: int | None
    cause: str | None = None
    function: str | None = None
    patch: str | None = None

    @property
    def text(self) -> str:
        """``pid 43 sleeping_on busymod_work_func`` / ``none; top livepatch_sample``."""
        if self.pid is None:
            text = "none"
        else:
            text = f"pid {self.pid} {self.cause}" + (f" {self.function}" if self.function else "")
        return text + (f"; top {self.patch}" if self.patch else "")


def parse_pid(text: str) -> int | None:
    """A pid as typed: ``43``, or ``none`` / empty for no task.

    Raises:
        ValueError: anything else.
    """
    text = text.strip().lower()
    if text in NONE_WORDS:
        return None
    if not text.isdigit():
        raise ValueError("a pid (a number), or none")
    return int(text)


def function_name(text: str) -> str:
    """A function as typed: ``busymod_work_func``, ``busymod_work_func()`` or a symbol with
    offset and module (``busymod_work_func+0x56/0x80 [mod]``): its name."""
    text = text.strip().split()[0] if text.strip() else ""
    return text.split("+", 1)[0].removesuffix("()")


@dataclass(frozen=True)
class Judgement:
    """Right or not, the hint for a wrong guess, and the blocker a right one named."""

    right: bool
    hint: str
    blocker: Blocker | None = None


def judge(answer: KlpAnswer, guess: KlpGuess, named: frozenset[int] = frozenset()) -> Judgement:
    """Compare a guess with the kernel's answer. The hint says what is wrong, never what is
    right; ``named``: blockers' pids already answered right (another one is asked for)."""
    top_hint = None
    if answer.top is not None and guess.patch != answer.top[1]:
        top_hint = (
            f"whose {answer.top[0]} runs: not that patch's; the kernel keeps a stack of them"
            if guess.patch
            else f"say whose {answer.top[0]} runs"
        )
    if not answer.blockers:
        if guess.pid is not None:
            return Judgement(
                False,
                "the kernel is not waiting for that task: is a transition in progress at all?",
            )
        return Judgement(top_hint is None, top_hint or "right: no task blocks anything")
    if guess.pid is None:
        return Judgement(False, "the transition has not completed: some task blocks it")
    by_pid = {b.pid: b for b in answer.blockers}
    b = by_pid.get(guess.pid)
    if b is None:
        return Judgement(
            False,
            f"pid {guess.pid} is not what the kernel waits for (its patch_state, or its stack, "
            "lets it switch)",
        )
    if b.pid in named:
        return Judgement(False, f"pid {b.pid} is answered already: another task blocks too")
    if guess.cause != b.cause:
        return Judgement(False, "right task, but not why the kernel cannot switch it")
    if b.cause == "sleeping_on":
        said = function_name(guess.function or "")
        assert b.function is not None
        if not said:
            return Judgement(False, "name the function it sleeps on")
        if said != b.function:
            if b.function in said:  # livepatch_bcklp_sleep_func: the new code of that function
                return Judgement(
                    False,
                    "right task and code, but the kernel names the function by the name it patches",
                )
            return Judgement(False, "right task and cause, but another function holds it")
    return Judgement(True, "right", b)


@dataclass(frozen=True)
class KlpScenario:
    """One livepatch exercise on a bundled real sample.

    The attributes the faces share with :class:`explorer.training.scenarios.Scenario`: name,
    era, title, story, look_for, pid (None: no single task is the question), cpu, answer,
    release, situation, build, to_json.

    Attributes:
        sample: the folder under samples/real.
        asks_top: the function whose running code is asked (a settled dump), else None.
        happened: what the operator did and saw, told before the answer.
    """

    name: str
    sample: str
    title: str
    happened: str
    story: str
    look_for: str
    asks_top: str | None = None
    era: str = "current"
    pid: int | None = None
    cpu: int | None = None
    kind: str = "klp"

    @property
    def folder(self) -> Path:
        """The sample's folder."""
        return SAMPLES_DIR / "real" / self.sample

    @property
    def available(self) -> bool:
        """The sample is here (a checkout and a wheel carry the livepatch samples)."""
        return (self.folder / "vmcore.zst").is_file() and (self.folder / "facts.json").is_file()

    @cached_property
    def facts(self) -> dict[str, Any]:
        """The sample's facts.json.

        Raises:
            DumpError: missing or not JSON.
        """
        path = self.folder / "facts.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DumpError(f"cannot read the exercise's facts: {exc}", str(path)) from None

    @cached_property
    def answer(self) -> KlpAnswer:
        """The kernel's answer (from facts.json)."""
        return kernel_answer(self.facts, self.asks_top)

    @property
    def release(self) -> str:
        """The kernel release of the dump."""
        return str(self.facts.get("kernel_release", "?"))

    @property
    def question(self) -> str:
        """What the trainee answers."""
        if self.asks_top is not None:
            return (
                "Which task blocks a livepatch transition (or none), and when the kernel calls "
                f"{self.asks_top} now, whose code runs?"
            )
        return (
            "Which task keeps the transition from completing, and why, in the kernel's words: "
            "is it running, is its stack unreliable, or is it sleeping on a function (which)?"
        )

    @property
    def situation(self) -> str:
        """What happened to the machine and the question; never the task, nor the cause."""
        return f"{self.happened} {self.question}"

    def build(self, folder: str | Path) -> Path:
        """Put the sample's dump and System.map into ``folder`` (copies; a real dump is not
        rebuilt); returns the dump's path.

        Raises:
            DumpError: the sample is not here.
        """
        if not self.available:
            raise DumpError(
                "this exercise's livepatch sample is missing from the bundled samples",
                str(self.folder),
            )
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("vmcore.zst", "System.map.zst"):
            source, target = self.folder / name, out / name
            if not (target.is_file() and target.stat().st_size == source.stat().st_size):
                shutil.copyfile(source, target)
        return out / "vmcore.zst"

    def to_json(self, answer: bool = True) -> dict[str, Any]:
        """As :meth:`explorer.training.scenarios.Scenario.to_json` (the catalog adds the
        exercise's number); without ``answer`` only what a trainee may know before
        answering."""
        out: dict[str, Any] = {
            "kind": "livepatch",
            "era": self.era,
            "release": self.release,
            "pid": None,
            "situation": self.situation,
        }
        if answer:
            out.update(
                name=self.name,
                title=self.title,
                story=self.story,
                look_for=self.look_for,
                answer=self.answer.to_json(),
            )
        return out


KLP_CATALOG: tuple[KlpScenario, ...] = (
    KlpScenario(
        "livepatch-stalled",
        "klp-6.12-stalled",
        "A kthread sleeping in the function a livepatch replaces holds the transition",
        "The test module test_klp_callbacks_busy was loaded and queued its work; then the "
        "livepatch test_klp_callbacks_demo, which replaces that module's busymod_work_func. "
        "/sys/kernel/livepatch/test_klp_callbacks_demo/transition has stayed 1 for half a "
        "minute, the kernel has sent its fake signals, and the dump was taken.",
        "The workqueue's kworker runs busymod_work_func, which sleeps (block_transition=Y) "
        "until the patch is applied. The kernel finds the original busymod_work_func's return "
        "address on that stack at every retry, and a kthread in D is not woken by the fake "
        "signals: it switches only once the function returns, which here it never does.",
        "The task list's D tasks; the walk of the kworker: frame #4 returns into "
        "busymod_work_func [test_klp_callbacks_busy], the original code the patch replaces.",
    ),
    KlpScenario(
        "livepatch-reversed",
        "klp-6.12-reversed",
        "Reversing a stuck transition: now the new code is the one to avoid",
        "The module bcklp_target started a kthread that sleeps in bcklp_sleep_func; the "
        "livepatch bcklp_patch, which replaces bcklp_sleep_func, got stuck on it. A second "
        "kthread was started, which entered the new bcklp_sleep_func. Then the operator wrote "
        "0 to /sys/kernel/livepatch/bcklp_patch/enabled, and transition stays 1 again.",
        "Writing 0 to enabled while the patching transition is stuck reverses it "
        "(klp_reverse_transition): the target is now the unpatched state, so every task "
        "already patched must leave the new code. bcklp_old sleeps in the original function "
        "and never switched, so it is in the target state already; bcklp_new sleeps in "
        "livepatch_bcklp_sleep_func, the new code, and the kernel names it by the function "
        "it replaces: bcklp_sleep_func.",
        "Both bcklp kthreads' walks: which code each sleeps in, and which state the "
        "unpatching transition wants (the old code is safe now).",
    ),
    KlpScenario(
        "livepatch-stacked",
        "klp-6.12-stacked",
        "Two livepatches on one function, and no transition at all",
        "test_klp_livepatch was loaded, then the kernel's livepatch-sample; both replace "
        "cmdline_proc_show. A colleague says a transition is stuck and wants to know who "
        "holds it.",
        "Both transitions completed ('patching complete' for each), so no task blocks "
        "anything: klp_transition_patch is NULL. The func_stack of cmdline_proc_show's "
        "klp_ops has both patches' functions, the one enabled last on top, and the ftrace "
        "handler calls the top one: cat /proc/cmdline prints livepatch_sample's 'this has "
        "been live patched'.",
        "The kernel log's livepatch lines (which patch completed, in which order); the "
        "func_stack in 'backchain klp'.",
        asks_top="cmdline_proc_show",
    ),
)


def catalog() -> tuple[KlpScenario, ...]:
    """The livepatch exercises whose samples are here."""
    return tuple(s for s in KLP_CATALOG if s.available)


def is_klp(scenario: Any) -> bool:
    """``scenario`` is a livepatch exercise."""
    return getattr(scenario, "kind", "") == "klp"


def answer_markdown(s: KlpScenario) -> str:
    """The kernel's answer as Markdown: its lines, or that nothing blocks and whose code runs."""
    a = s.answer
    if a.blockers:
        lines = "\n".join(f"- `livepatch: {b.line}`" for b in a.blockers)
        return (
            f"The kernel's last retry of the {a.direction} transition of `{a.patch}` logged:"
            f"\n\n{lines}\n"
        )
    text = "No transition was in progress: no task blocks anything.\n"
    if a.top is not None:
        text += (
            f"\n`{a.top[0]}` runs `{a.top[1]}`'s code: the patch enabled last "
            f"(the kernel's order: {', '.join(a.patches)}) is on top of its func_stack.\n"
        )
    return text


def klp_markdown(s: KlpScenario) -> str:
    """A livepatch exercise's title, story, what to look for and the kernel's answer."""
    return (
        f"## Scenario {s.name}: {s.title}\n\n"
        f"Kernel {s.release}, sample `{s.sample}`.\n\n{s.story}\n\n"
        f"**What to look for:** {s.look_for}\n\n**The kernel's answer:**\n\n"
        f"{answer_markdown(s)}\n"
    )
