"""Help: keys, the legend of colours and marks, and a primer on s390x back chains."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

KEYS = (
    ("everywhere", "`?`", "this help"),
    (
        "",
        "`ctrl+p`",
        "command palette: open a task by pid or name, go to an address or "
        "symbol, lowcore of CPU n, switch unwinder rules, unreliable only, change theme",
    ),
    ("", "`l` / `m`", "lowcore of each CPU / memory"),
    ("", "`k`", "livepatches and the tasks that block a transition (as `backchain klp`)"),
    ("", "`escape` / `q`", "back / quit"),
    (
        "overview",
        "`/`",
        "filter: words match comm, pid, a function on the stack or the "
        "verdict; `pid:1` `comm:sh` `fn:do_wait` `rule:task_running` `cpu:0` match one field",
    ),
    ("", "`u` / `G` / `s`", "unreliable only / group identical stacks / sort (or click a header)"),
    ("", "`enter`", "open the stack of the selected task"),
    ("stack", "`n` or `space`, `p`", "next step, previous step"),
    ("", "`r`, `0`, `g`", "run to the end, restart at frame #0, go to frame #n"),
    (
        "",
        "`f`",
        "the DWARF CFI unwinder's frame beside each frame, disagreements marked (as "
        "`bt --cfi`; needs the -dbg vmlinux: `--vmlinux FILE`)",
    ),
    ("", "`x`", "export the walk as Markdown"),
    ("", "`m`", "memory at the current frame, annotated"),
    ("", "`v`", "narrow terminals: cycle the lower pane (checks, frame, map)"),
    (
        "exercise",
        "`a` / `R` / `i`",
        "answer: the rule, then the failing frame / reveal the verdict (asks first; "
        "recorded as given up) / a scenario's situation, after the answer its story "
        "(`backchain scenarios open`, or `backchain DUMP --exercise`)",
    ),
    (
        "",
        "`a` / `R` / `i`",
        "a livepatch exercise (in the task list too): the task that blocks the transition, "
        "the kernel's words for why, the function; `k` opens once it is answered",
    ),
    ("memory", "`ctrl+g`", "go to an address (hex) or a symbol (`name+0xoff`)"),
    ("", "arrows, `enter`, `backspace`", "move, follow the pointer under the cursor, come back"),
    ("", "`t`", "switch virtual / physical addresses"),
    ("lowcore", "`[` `]`", "previous / next CPU (or click a tab)"),
)

HELP_TEMPLATE = """\
# backchain explorer

## Keys

{keys}

## Legend

* `✓` a check passed, `✗` it failed (in the error colour, with the explanation), `•` a
  note, or a rule livepatch never reached because it had already given up.
* In the walk, a function in `(parentheses)` is unreliable: its return address was guessed
  from a saved r14 after an interrupt. `→irq` marks a switch to another stack.
* In the frame inspector and its hex dump the colours match: muted for the unused area,
  **accent for r14** (the return address), **green for the back chain**.
* In the stacks map each row is 128 bytes, low addresses on top: frames are slices in two
  alternating colours, `▓` is a pt_regs block, the highlighted slice (`▶`) is the current
  step, `↓` marks where the walk changed stacks.

* CPU states on the overview card come from the PSW: *running*, *user mode*, *idle wait*
  (waiting with interrupts enabled) and *disabled wait* (stopped with interrupts off: what
  a panicked or halted CPU looks like).

## How an s390x kernel stack is walked

Every kernel function saves registers r6..r15 in a 160-byte area of its **caller's** frame
and then lowers r15 (the stack pointer) to make its own frame. The kernel is built with
`-mbackchain -mpacked-stack`, so the last word of each 160-byte frame (offset `0x98`) is the
**back chain**: the address of the caller's frame. The r14 slot (offset `0x88`) holds a
return address into the function that owns the frame.

The unwinder (`arch/s390/kernel/unwind_bc.c`) starts at the saved stack pointer of a sleeping
task (`thread.ksp`) or at a CPU's r15, and then, step by step:

1. follows the back chain to the next frame, which must lie **above** the current one, on a
   stack this task may use (its task stack; a running task also its CPU's irq, nodat,
   restart and machine-check stacks, each entered once), with room for 160 bytes;
2. when the back chain is **0**, looks for a `pt_regs` right above the frame: the registers an
   interrupt, exception or system call saved. If it is the pt_regs at the very top of the
   task stack, the walk is **complete**; otherwise the walk continues at the interrupted
   PSW address and r15;
3. stops with an **error** when a stack pointer is misaligned, points down, or leaves every
   allowed stack.

## When is a stack reliable?

Livepatch switches a task to a patched function only when it can trust the task's stack
(`arch_stack_walk_reliable`). For every frame, in this order: it must be on the task stack,
must not come from a pt_regs (an interrupted function may not have saved its return
address yet), its return address must be kernel text and not a kretprobe trampoline, and
there must be fewer than 100 entries. Then the walk must have ended without an unwind error.
A task that is running on a CPU is never checked: livepatch waits until it sleeps.

Press `escape` to close.
"""
HELP = HELP_TEMPLATE.replace(
    "{keys}",
    "\n".join(
        ["| where | key | does |", "|---|---|---|"] + [f"| {w} | {k} | {d} |" for w, k, d in KEYS]
    ),
)


class HelpScreen(ModalScreen[None]):
    """The help text in a scrollable box."""

    BINDINGS = [
        Binding("escape,question_mark,q", "app.pop_screen", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; max-width: 100%; height: 90%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        """The help text."""
        with VerticalScroll() as box:
            box.border_title = "help"
            yield Markdown(HELP)

    def on_mount(self) -> None:
        """Focus the text so arrows scroll it."""
        self.query_one(VerticalScroll).focus()
