"""Start-up: a command builds only its own parser; every module of COMMANDS registers the
command of its name (the one-parser fast path relies on it); --help imports nothing heavy."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from explorer.cli import _command_names, build_parser

ROOT = Path(__file__).resolve().parent.parent


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_each_module_registers_its_own_name() -> None:
    names = _command_names()
    assert _choices(build_parser()) == names and "sys" in names and "check" in names
    for name in names:
        assert _choices(build_parser(only=name)) == [name]


def test_help_imports_no_heavy_package() -> None:
    code = (
        "import sys\n"
        "from explorer.cli import main\n"
        "for argv in (['--help'], ['check', '--help'], ['bt', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    top, everything = done.stderr.splitlines()[-2:]
    loaded = set(top.split())
    # --help lists every command (their parsers are built) without what only running them
    # needs: the served explorer's policy, the installed version's metadata.
    assert not {"explorer.serve.policy", "importlib.metadata"} & set(everything.split())
    assert "usage: backchain check" in done.stdout
    assert "argparse" in loaded  # the probe saw the modules
    heavy = {"textual", "rich", "construct", "elftools", "capstone", "zstandard", "cramjam"}
    assert not loaded & heavy
