"""The facts and the text of ``backchain klp`` (and of the explorer's livepatch screen):
the patches with their functions and, while a transition is in progress, the kernel's
decision for every pending task. Data in, data out; the faces print."""

from __future__ import annotations

from typing import Any

from explorer.livepatch.replay import Replay, check_range, force_cost, unblock
from explorer.livepatch.state import STATE_WORDS, LivepatchState

#: The prefix of the kernel's own lines (after pr_fmt's "livepatch: ": __func__).
KERNEL_PREFIX = "klp_try_switch_task: "


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 task``, ``2 tasks`` (as explorer.cli.common's, which a report does not import)."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def _hex(value: int) -> str:
    return f"0x{value:x}"


def klp_json(
    kernel: Any, state: LivepatchState, result: Replay | None, dump: str
) -> dict[str, Any]:
    """The facts of ``klp`` as one JSON document (the text report is made from it)."""
    stacks = {f: ops.func_stack for ops in state.ops for f in ops.func_stack}

    def func_row(func: Any) -> dict[str, Any]:
        stack = stacks.get(func.address, ())
        return {
            "old_name": func.old_name,
            "old_sympos": func.old_sympos,
            "old_func": _hex(func.old_func),
            "old_size": func.old_size,
            "old_symbol": kernel.symbolize(func.old_func) if func.old_func else None,
            "new_func": _hex(func.new_func),
            "new_size": func.new_size,
            "new_symbol": kernel.symbolize(func.new_func) if func.new_func else None,
            "nop": func.nop,
            "patched": func.patched,
            "transition": func.transition,
            "func_stack": [owner[0].name for f in stack if (owner := state.func(f))],
        }

    patches = [
        {
            "name": p.name,
            "klp_patch": _hex(p.address),
            "enabled": p.enabled,
            "transition": p is state.transition_patch,
            "forced": p.forced,
            "replace": p.replace,
            "objects": [
                {
                    "name": o.label,
                    "loaded": o.loaded,
                    "dynamic": o.dynamic,
                    "patched": o.patched,
                    "funcs": [func_row(f) for f in o.funcs],
                }
                for o in p.objects
            ],
        }
        for p in state.patches
    ]
    data: dict[str, Any] = {
        "livepatch": True,
        "patches": patches,
        "klp_target_state": state.target_state,
        "klp_signals_cnt": state.signals_cnt,
        "tif_patch_pending_bit": state.tif_bit,
        "transition": None,
    }
    if result is None:
        return data
    tasks = []
    for d in result.decisions:
        row: dict[str, Any] = {
            "pid": d.task.pid,
            "comm": d.task.comm,
            "task": _hex(d.task.address),
            "state": d.task.state,
            "kthread": d.task.is_kthread,
            "patch_state": d.state.patch_state,
            "patch_pending": d.state.pending,
            "cpu": d.task.cpu,
            "idle_cpu": d.idle_cpu,
            "cause": d.cause,
            "message": KERNEL_PREFIX + d.message if d.blocks else None,
            "rule": d.rule,
            "frame": d.frame,
            "function": None,
            "unblock": unblock(d, result),
            "bt": f"backchain bt {dump} --task {_hex(d.task.address)}"
            if d.task.pid == 0
            else f"backchain bt {dump} --pid {d.task.pid}",
        }
        if d.avoided is not None:
            a = d.avoided
            row["function"] = {
                "old_name": a.func.old_name,
                "code": a.code,
                "owner": a.owner.name if a.owner is not None else None,
                "range": [_hex(a.start), _hex(a.end)],
                "address": _hex(a.address),
                "symbol": kernel.symbolize(a.address),
            }
        tasks.append(row)
    patch = result.patch
    ranges = []
    for obj, func in patch.funcs:
        if obj.patched:
            code, owner, start, end = check_range(state, func, result.target)
            ranges.append(
                {
                    "old_name": func.old_name,
                    "object": obj.label,
                    "code": code,
                    "owner": owner.name if owner is not None else None,
                    "range": [_hex(start), _hex(end)],
                }
            )
    data["transition"] = {
        "patch": patch.name,
        "target_state": result.target,
        "direction": "patching" if result.target == 1 else "unpatching",
        "target_word": STATE_WORDS[result.target],
        "signals_cnt": result.signals_cnt,
        "signals_sent": result.signals_sent,
        "switched": result.switched,
        "offline_idle": result.offline_idle,
        "avoided": ranges,
        "tasks": tasks,
        "blocking": len(result.blocking),
        "by_cause": [[label, n] for label, n in result.by_cause()],
        "force": force_cost(result, state.patches) if result.blocking else None,
    }
    return data


def _flags(row: dict[str, Any], names: tuple[str, ...]) -> str:
    return " ".join(n for n in names if row.get(n)) or "-"


def _code_words(code: str, owner: str | None, old_name: str) -> str:
    """Which code of a function the kernel avoids: the original (patching a function for
    the first time), a patch's new code (the previous patch's when patching over it, this
    patch's when unpatching)."""
    if code == "original":
        return f"the original {old_name}"
    which = "the previous patch" if code == "previous patch" else "this patch"
    return f"{owner}'s new {old_name} ({which})"


def render_klp(data: dict[str, Any]) -> list[str]:
    """The text report of ``backchain klp`` from :func:`klp_json`."""
    patches = data["patches"]
    lines = [f"{plural(len(patches), 'livepatch', 'livepatches')} loaded (klp_patches):"]
    for p in patches:
        lines.append(
            f"  {p['name']}  enabled={int(p['enabled'])} transition={int(p['transition'])} "
            f"forced={int(p['forced'])} replace={int(p['replace'])}  (klp_patch {p['klp_patch']})"
        )
        for o in p["objects"]:
            state = ("patched" if o["patched"] else "not patched") + (
                "" if o["loaded"] else ", not loaded"
            )
            dynamic = ", dynamic (nop)" if o["dynamic"] else ""
            lines.append(f"    object {o['name']} ({state}{dynamic})")
            for f in o["funcs"]:
                old = f["old_symbol"] or f["old_func"]
                new = f["new_symbol"] or f["new_func"]
                lines.append(f"      {f['old_name']}: {old} -> {new}")
                extra = _flags(f, ("nop", "patched", "transition"))
                stack = f["func_stack"]
                on_stack = f"; func_stack {' > '.join(stack)}" if len(stack) > 1 else ""
                lines.append(f"        {extra}{on_stack}")
    t = data["transition"]
    if t is None:
        lines += ["", "no transition in progress (klp_transition_patch is NULL)"]
        return lines
    sent = t["signals_sent"]
    retries = (
        f"; klp_signals_cnt {t['signals_cnt']}"
        + (f", fake signals sent {plural(sent, 'time')}" if sent is not None else "")
        if t["signals_cnt"] is not None
        else ""
    )
    lines += [
        "",
        f"transition in progress: {t['patch']}, {t['direction']} "
        f"(klp_target_state {t['target_state']}){retries}",
    ]
    for r in t["avoided"]:
        lines.append(
            f"  avoided on stacks: {_code_words(r['code'], r['owner'], r['old_name'])}, "
            f"{r['range'][0]}-{r['range'][1]}"
        )
    lines.append(
        f"  {plural(t['switched'], 'task')} already {t['target_word']}; "
        f"{plural(len(t['tasks']), 'task')} still pending"
        + (
            f"; {t['offline_idle']} offline CPUs' idle tasks switch at once"
            if t["offline_idle"]
            else ""
        )
    )
    if t["tasks"]:
        lines += ["", "klp_try_switch_task(), in the kernel's order:"]
    for row in t["tasks"]:
        pending = "TIF_PATCH_PENDING" if row["patch_pending"] else "no TIF_PATCH_PENDING"
        head = row["message"] or f"{row['comm']}:{row['pid']} would switch now"
        lines.append(f"  {head}")
        lines.append(
            f"      state {row['state']}, patch_state {row['patch_state']}, {pending}"
            + (f", on CPU {row['cpu']}" if row["cpu"] is not None else "")
        )
        f = row["function"]
        if f is not None:
            lines.append(
                f"      frame #{row['frame']} returns to {f['symbol'] or f['address']}: "
                f"in {_code_words(f['code'], f['owner'], f['old_name'])}"
            )
        elif row["rule"] is not None:
            at = f" at frame #{row['frame']}" if row["frame"] is not None else ""
            lines.append(f"      rule {row['rule']}{at}")
        for advice in row["unblock"]:
            lines.append(f"      unblock: {advice}")
        if row["cause"] != "running":
            lines.append(f"      stack: {row['bt']}")
    lines.append("")
    if t["blocking"]:
        causes = ", ".join(f"{n} {label}" for label, n in t["by_cause"])
        lines.append(
            f"{plural(t['blocking'], 'task blocks', 'tasks block')} the transition: {causes}"
        )
        lines.append(t["force"])
    else:
        lines.append("no task blocks the transition: the next retry completes it")
    return lines


#: Blocking tasks ``check`` lists before "... and N more" (``--all`` lists all).
SHOWN = 20


def transition_lines(result: Replay, dump: str, every: bool = False) -> list[str]:
    """The section ``check`` adds while a transition is in progress: the blocking tasks in
    the kernel's words and order."""
    blocking = result.blocking
    direction = "patching" if result.target == 1 else "unpatching"
    head = f"livepatch transition in progress: {result.patch.name}, {direction}: "
    if not blocking:
        return ["", head + "no task blocks it; the next retry completes it"]
    causes = ", ".join(f"{n} {label}" for label, n in result.by_cause())
    lines = ["", head + f"{plural(len(blocking), 'task blocks', 'tasks block')} it: {causes}"]
    shown = blocking if every else blocking[:SHOWN]
    lines += [f"  {KERNEL_PREFIX}{d.message}" for d in shown]
    if len(blocking) > len(shown):
        lines.append(f"  … and {len(blocking) - len(shown)} more (--all lists them)")
    lines.append("  'backchain klp' on this dump says what would unblock each one")
    return lines


def task_line(state: LivepatchState, task: Any, decision: Any) -> str:
    """The ``livepatch:`` line of ``bt`` while a transition is in progress: the kernel's
    decision for this task (instead of the hypothetical "can be switched")."""
    patch = state.transition_patch
    target = state.target_state
    assert patch is not None and target is not None
    direction = "patching" if target == 1 else "unpatching"
    where = f"transition of {patch.name}, {direction}"
    if decision is None:
        return (
            f"livepatch: {task.comm}:{task.pid} is {STATE_WORDS[target]} already "
            f"(patch_state {target}; {where})"
        )
    if not decision.blocks:
        return f"livepatch: {task.comm}:{task.pid} would switch now ({where})"
    frame = ""
    if decision.avoided is not None:
        a = decision.avoided
        owner = a.owner.name if a.owner is not None else None
        frame = f" (frame #{a.frame}: in {_code_words(a.code, owner, a.func.old_name)})"
    return (
        f"livepatch: {KERNEL_PREFIX}{decision.message}{frame}; {where}: 'backchain klp' says more"
    )
