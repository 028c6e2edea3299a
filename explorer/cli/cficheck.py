"""``check --cfi``: every task's back-chain walk beside its DWARF CFI unwind, counted."""

from __future__ import annotations

from typing import Any


def check_cfi(kernel: Any, scan: Any, ctx: Any, as_json: bool) -> int:
    """``check --cfi``: every task's walk and its CFI unwind; agreement counts, and why the
    CFI unwinds stopped, grouped (``--json``: per task, with the counts)."""
    import json
    from collections import Counter

    from explorer.debuginfo.cfi import EXPLANATION_KINDS, cfi_for_walk, cfi_json, table_or_error
    from explorer.reports.cfiexplain import explain
    from explorer.reports.walk import analysis_json
    from explorer.walk.analysis import analyse_all

    table = table_or_error(kernel)
    ends: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    totals = {"tasks": 0, "tasks_agreeing": 0, "frames": 0, "frames_agreeing": 0}
    docs: list[dict[str, Any]] = []

    def keep(a: Any) -> None:
        cfi = cfi_for_walk(kernel, table, a.walk)
        totals["tasks"] += 1
        totals["frames"] += len(a.walk.steps)
        if cfi is None:
            return
        ag = explain(kernel, table, a.walk, cfi)
        kinds.update(why.kind for why in ag.explanations if why is not None)
        totals["frames_agreeing"] += ag.agree
        totals["tasks_agreeing"] += ag.agree == len(a.walk.steps)
        ends[_end_kind(cfi.end)] += 1
        if as_json:
            docs.append(analysis_json(kernel, a) | {"cfi": cfi_json(kernel, a.walk, cfi, ag)})

    analyse_all(kernel, scan.tasks, ctx, keep=keep)
    if as_json:
        summary = totals | {
            "cfi_ends": dict(ends.most_common()),
            "differences": dict(kinds.most_common()),
        }
        print(json.dumps({"summary": summary, "tasks": docs}, indent=1))
        return 0
    print(
        f"CFI beside the back chain: {totals['frames_agreeing']} of {totals['frames']} frames "
        f"agree; {totals['tasks_agreeing']} of {totals['tasks']} tasks agree on every frame"
    )
    print("where the CFI unwinds stopped:")
    for end, n in ends.most_common():
        print(f"  {n:>5}  {end}")
    if kinds:
        print("why frames differ (bt --cfi explains each):")
        for kind, n in kinds.most_common():
            print(f"  {n:>5}  {kind}: {EXPLANATION_KINDS[kind]}")
    else:
        print("no frame differs")
    return 0


def _end_kind(end: str) -> str:
    """An end reason without the offset (``no CFI at ret_from_fork (assembly ...)``)."""
    import re

    return re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "", end)
