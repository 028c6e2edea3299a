"""Record every CLI command's output on every bundled sample and some scenarios, to compare
two versions of backchain byte for byte (a refactoring must not change what users see).

    python -m tests.helpers.cli_outputs OUT_DIR            # record
    python -m tests.helpers.cli_outputs OUT_DIR --compare BASE_DIR

Each command runs in this process (``explorer.cli.main``), with the shared caches warm: 2
cores go further that way. One file per sample and command: the exit status, stdout, stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The checkout whose samples are used (BACKCHAIN_ROOT: another checkout, e.g. main's).
ROOT = Path(os.environ.get("BACKCHAIN_ROOT") or Path(__file__).resolve().parents[2])
REAL = ROOT / "samples" / "real"

#: Scenarios recorded besides the real samples (both eras, running and sleeping tasks).
SCENARIOS = (
    "chain-loop",
    "misaligned-sp-v5.5",
    "irq-via-backchain",
    "preempted",
    "mcck-current",
    "kretprobe-v5.5",
    "ftrace-graph",
)


def _per_dump(dump: str, modules: bool) -> list[list[str]]:
    """The commands run on one dump (paths given as seen by the user)."""
    cmds = [
        ["info", dump],
        ["info", dump, "--json"],
        ["sys", dump],
        ["sys", dump, "--json"],
        ["ps", dump],
        ["ps", dump, "-v"],
        ["ps", dump, "--tree"],
        ["ps", dump, "-S"],
        ["ps", dump, "-l"],
        ["ps", dump, "-m"],
        ["ps", dump, "--pid", "1", "-p"],
        ["ps", dump, "--pid", "1", "-c"],
        ["ps", dump, "--json"],
        ["ps", dump, "--state", "D,R"],
        ["bt", dump],
        ["bt", dump, "--json"],
        ["bt", dump, "-a"],
        ["bt", dump, "-a", "--json"],
        ["bt", dump, "--cpu", "0"],
        ["bt", dump, "--cpu", "1", "--steps"],
        ["bt", dump, "--pid", "1"],
        ["bt", dump, "--pid", "1", "--json"],
        ["bt", dump, "--pid", "1", "--markdown"],
        ["bt", dump, "--pid", "1", "--steps"],
        ["bt", dump, "--pid", "2", "--types", "probe"],
        ["bt", dump, "--all", "--state", "D"],
        ["check", dump],
        ["check", dump, "--json"],
        ["check", dump, "--all"],
        ["check", dump, "--functions", "schedule,do_wait"],
        ["log", dump, "--tail", "40"],
        ["log", dump, "--json", "--tail", "5"],
        ["log", dump, "--grep", "Linux"],
        ["sym", dump, "schedule", "init_task", "0x1000"],
        ["sym", dump, "schedule", "--json"],
        ["rd", dump, "init_task", "16"],
        ["rd", dump, "linux_banner", "8", "-s"],
        ["struct", dump, "pt_regs"],
        ["struct", dump, "task_struct", "init_task"],
        ["struct", dump, "list_head", "init_task", "--json"],
        ["task", dump],
        ["task", dump, "1", "-m", "pid,comm,stack"],
        ["task", dump, "1", "--json"],
        ["dis", dump, "schedule", "12"],
        ["dis", dump, "schedule+0x3e", "-r"],
        ["dis", dump, "schedule", "-f", "--json"],
        ["audit", dump],
        ["diff", dump, dump],
        ["diff", dump, dump, "--pid", "1", "--pid", "2"],
    ]
    if modules:
        cmds += [["mod", dump], ["mod", dump, "--json"]]
    return cmds


def commands() -> Iterator[tuple[str, list[str]]]:
    """(file name, argv) of every recorded command."""
    yield "scenarios-list", ["scenarios", "list"]
    yield "scenarios-list-answers", ["scenarios", "list", "--answers"]
    yield "scenarios-show", ["scenarios", "show", "chain-loop", "--answer"]
    yield "scenarios-show-bad", ["scenarios", "show", "chian-loop"]
    yield "bad-command", ["chekc"]
    yield "missing-dump", ["info", "/nonexistent/vmcore"]
    dumps = [s.relative_to(ROOT) for s in sorted(REAL.iterdir())]
    for sample in dumps:
        dump = f"{sample}/vmcore.zst"
        for argv in _per_dump(dump, modules=True):
            yield f"{sample.name}/{_slug(argv)}", argv
        yield f"{sample.name}/convert", ["convert", dump, "-o", "{tmp}/out.elf"]
        yield f"{sample.name}/info-converted", ["info", "{tmp}/out.elf"]
        yield f"{sample.name}/info-map", ["info", dump, "--map", f"{sample}/System.map.zst"]
        yield f"{sample.name}/bt-map", ["bt", dump, "--map", f"{sample}/System.map.zst"]
        yield f"{sample.name}/check-map", ["check", dump, "--map", f"{sample}/System.map.zst"]
    # Another kernel's map: refused, then used with --force.
    a, b = dumps[0], dumps[-1]
    wrong = ["--map", f"{b}/System.map.zst"]
    yield "mismatch/info", ["info", f"{a}/vmcore.zst", *wrong]
    yield "mismatch/info-force", ["info", f"{a}/vmcore.zst", *wrong, "--force"]
    yield "mismatch/bt-json-force", ["bt", f"{a}/vmcore.zst", *wrong, "--force", "--json"]
    yield "diff-two", ["diff", f"{dumps[1]}/vmcore.zst", f"{dumps[2]}/vmcore.zst"]
    yield "check-many", ["check", f"{dumps[1]}/vmcore.zst", f"{dumps[2]}/vmcore.zst", "-j", "1"]
    for name in SCENARIOS:
        yield f"scenario-{name}/build", ["scenarios", "build", name, "-o", "{tmp}/" + name]
        dump = "{tmp}/" + name + "/vmcore"
        for argv in _per_dump(dump, modules=False):
            yield f"scenario-{name}/{_slug(argv)}", argv


def _slug(argv: list[str]) -> str:
    words = [argv[0]] + [w for w in argv[2:] if "/" not in w]
    return "-".join(w.lstrip("-").replace(",", "+") for w in words) or argv[0]


def run(argv: list[str]) -> str:
    """One command in this process: its exit status, stdout and stderr as one text."""
    from explorer.cli import main
    from explorer.cli.common import SESSION

    SESSION.clear()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status: object = main(argv)
        except SystemExit as exc:
            status = exc.code
    head = f"$ backchain {' '.join(argv)}\nexit {status}\n"
    return f"{head}--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"


def record(out_dir: Path, only: str | None = None) -> int:
    """Run every command (``only``: those whose file name contains it); write one file each
    under ``out_dir``."""
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="backchain-cli-") as tmp:
        for name, argv in commands():
            if only is not None and only not in name and not name.endswith("/build"):
                continue
            argv = [a.replace("{tmp}", tmp) for a in argv]
            text = run(argv).replace(tmp, "{tmp}").replace(str(ROOT), "{root}")
            path = out_dir / f"{name}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return 0


def compare(new: Path, base: Path, only: str | None = None) -> int:
    """Print a unified diff of every file that differs; 1 when any does."""
    differ = 0
    names = sorted({p.relative_to(base) for p in base.rglob("*.txt") if not only or only in str(p)})
    names += sorted({p.relative_to(new) for p in new.rglob("*.txt")} - set(names))
    for rel in names:
        a = (base / rel).read_text() if (base / rel).exists() else ""
        b = (new / rel).read_text() if (new / rel).exists() else ""
        if a != b:
            differ = 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    a.splitlines(True), b.splitlines(True), f"base/{rel}", f"new/{rel}", n=1
                )
            )
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the outputs into")
    parser.add_argument("--compare", type=Path, metavar="BASE", help="then diff against BASE")
    parser.add_argument("--only", metavar="TEXT", help="only the commands whose file has TEXT")
    args = parser.parse_args()
    record(args.out, args.only)
    return compare(args.out, args.compare, args.only) if args.compare else 0


if __name__ == "__main__":
    sys.exit(main())
