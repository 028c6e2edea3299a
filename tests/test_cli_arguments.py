"""Arguments as people type them: every subcommand's options placed before, between and
after its positionals parse to the same thing, and the commands that read a dump print the
same output whichever the placement; errors show the subcommand's own usage."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from explorer.cli import _command_names, build_parser, main
from explorer.cli.common import parse_command, subcommands

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
DUMP = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
OTHER = str(SAMPLES / "bpo12-6.12-panic" / "vmcore.zst")
MAP = str(SAMPLES / "bpo12-6.12-busy" / "System.map.zst")
KLP = str(SAMPLES / "klp-6.12-stalled" / "vmcore.zst")

#: command words, positionals, option groups: one row per subcommand (and action).
TABLE: list[tuple[list[str], list[str], list[list[str]]]] = [
    (["info"], [DUMP], [["--map", MAP], ["--json"]]),
    (["sys"], [DUMP], [["--types", "btf"], ["--json"]]),
    (["ps"], [DUMP], [["--pid", "1,2"], ["--state", "S"], ["--pid", "3"], ["--json"]]),
    (["log"], [DUMP], [["--tail", "3"], ["--grep", "Linux"], ["-i"]]),
    (["rd"], [DUMP, "linux_banner", "4"], [["-s"], ["--map", MAP]]),
    (["struct"], [DUMP, "task_struct"], [["--json"], ["--map", MAP]]),
    (["task"], [DUMP, "1"], [["--map", MAP], ["-m", "pid,comm"]]),
    (["profile"], ["vmlinux"], [["-o", "out.json"], ["--json"]]),
    (["bt"], [DUMP], [["--pid", "1,2"], ["--state", "S"], ["--json"], ["-t"], ["--map", MAP]]),
    (["check"], [DUMP], [["--functions", "schedule"], ["--comm", "sleep"], ["--all"]]),
    (["klp"], [KLP], [["--json"], ["--era", "current"]]),
    (["report"], [DUMP], [["--all"], ["--markdown"], ["--map", MAP]]),
    (["diff"], [DUMP, OTHER], [["--pid", "2"], ["--json"]]),
    (["sym"], [DUMP, "schedule", "__schedule"], [["--json"], ["--map", MAP]]),
    (["mod"], [DUMP], [["--json"], ["--force"]]),
    (["dis"], [DUMP, "__schedule+0x43c", "6"], [["-r"], ["--map", MAP]]),
    (["audit"], [DUMP], [["--json"], ["--types", "btf"]]),
    (["convert"], [DUMP], [["-o", "out.elf"], ["--force"]]),
    (["search"], [DUMP, "schedule"], [["-t"], ["--pid", "1"], ["--limit", "5"]]),
    (["scenarios", "list"], [], [["--answers"]]),
    (["scenarios", "show"], ["preempted"], [["--answers"]]),
    (["scenarios", "build"], ["preempted"], [["-o", "dir"], ["--force"]]),
    (["scenarios", "results"], ["results.jsonl"], [["--json"]]),
    (["serve"], [DUMP], [["--port", "0"], ["--exercise"], ["--max-sessions", "3"]]),
    (["shell"], [DUMP], [["--map", MAP], ["--types", "btf"]]),
]


def _placements(positionals: list[str], options: list[list[str]]) -> dict[str, list[str]]:
    flat = [word for group in options for word in group]
    half = len(options) // 2 or 1
    first = [word for group in options[:half] for word in group]
    rest = [word for group in options[half:] for word in group]
    return {
        "after": [*positionals, *flat],
        "before": [*flat, *positionals],
        "between": [*positionals[:1], *flat, *positionals[1:]],
        "around": [*first, *positionals[:1], *rest, *positionals[1:]],
    }


def _parser(words: list[str]) -> argparse.ArgumentParser:
    parser = subcommands(build_parser(only=words[0]))[words[0]]
    return parser


def test_the_table_has_every_command() -> None:
    assert {row[0][0] for row in TABLE} == set(_command_names())


@pytest.mark.parametrize(
    ("words", "positionals", "options"), TABLE, ids=[" ".join(r[0]) for r in TABLE]
)
def test_options_anywhere_parse_the_same(
    words: list[str], positionals: list[str], options: list[list[str]]
) -> None:
    parser = _parser(words)
    parsed = {
        where: vars(parse_command(parser, [*words[1:], *argv]))
        for where, argv in _placements(positionals, options).items()
    }
    first = parsed["after"]
    assert all(p == first for p in parsed.values()), parsed
    # Every option was taken (none left at its default by a misplaced word).
    for group in options:
        flag = group[0]
        action = next(
            a
            for a in (subcommands(parser)[words[1]] if len(words) > 1 else parser)._actions
            if flag in a.option_strings
        )
        assert first[action.dest] != action.default, (flag, first[action.dest])


#: Commands that read the dump, run with each placement: the same output.
RUN = [
    ["task", DUMP, "--map", MAP, "1"],
    ["dis", DUMP, "__schedule+0x43c", "-r", "6"],
    ["rd", DUMP, "linux_banner", "-s", "4"],
    ["ps", DUMP, "--pid", "1,2", "--pid", "34", "--json"],
    ["bt", DUMP, "--pid", "1", "--json"],
    ["bt", DUMP, "--pid", "1", "-T", "-v"],
    ["report", DUMP, "--markdown", "--all"],
    ["klp", KLP, "--era", "current", "--json"],
    ["sym", DUMP, "--json", "schedule"],
    ["struct", DUMP, "list_head", "--json"],
]


@pytest.mark.parametrize("argv", RUN, ids=[a[0] for a in RUN])
def test_options_anywhere_give_the_same_output(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    command, rest = argv[0], argv[1:]
    parser = _parser([command])
    optional = {s for a in parser._actions for s in a.option_strings}
    positionals: list[str] = []
    options: list[list[str]] = []
    words = iter(rest)
    for word in words:
        if word in optional:
            action = parser._option_string_actions[word]
            options.append([word] if action.nargs == 0 else [word, next(words)])
        else:
            positionals.append(word)
    outputs = {}
    for where, placed in _placements(positionals, options).items():
        status = main([command, *placed])
        out = capsys.readouterr()
        assert status == 0, (where, out.err)
        outputs[where] = out.out
    assert outputs["after"] and len(set(outputs.values())) == 1, outputs


def test_an_error_shows_the_commands_own_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["task", DUMP, "1", "2"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("usage: backchain task ") and "backchain task: error: " in err
    with pytest.raises(SystemExit):
        main(["bt", DUMP, "--pid", "x"])
    err = capsys.readouterr().err
    assert "backchain bt: error: argument --pid" in err and "'x'" in err


def test_help_version_and_the_help_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = [ln.split()[0] for ln in out.split("commands (")[1].splitlines()[1:] if ln.strip()]
    assert listed == [*_command_names(), "help"]
    assert all(len(ln.split(None, 1)) == 2 for ln in out.split("commands (")[1].splitlines()[1:])
    with pytest.raises(SystemExit):
        main(["--version"])
    from importlib.metadata import version

    assert capsys.readouterr().out == f"backchain {version('backchain')}\n"
    with pytest.raises(SystemExit):
        main(["help", "dis"])
    assert capsys.readouterr().out.startswith("usage: backchain dis ")
    assert main(["help", "nosuch"]) == 2
    assert "'nosuch' is not a command" in capsys.readouterr().err
    for argv in (["chek", DUMP], ["chek", DUMP, "--json"], ["chek"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "'chek' is neither a command nor an existing dump file" in err, argv
        assert "did you mean 'check'?" in err and "unrecognized" not in err


def test_filters_that_match_nothing_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, said in (
        (["ps", DUMP, "--pid", "99999"], "no task matches --pid 99999"),
        (["ps", DUMP, "--state", "D"], "no task matches --state D"),
        (["bt", DUMP, "--state", "D"], "no task matches --state D"),
        (["check", DUMP, "--comm", "nosuch*"], "no task matches --comm nosuch*"),
    ):
        assert main(argv) == 0
        assert capsys.readouterr().out.startswith(said), argv


def test_a_task_has_the_same_fields_in_every_json(capsys: pytest.CaptureFixture[str]) -> None:
    """ps, bt and check --json give a task the same fields with the same values (bt once
    lacked last_cpu); the values are the guest's own (its ps: pid, ppid, comm)."""
    import json

    facts = json.loads((SAMPLES / "bpo12-6.12-busy" / "facts.json").read_text())
    guest = {p["pid"]: p for p in facts["ps"]}
    docs = {}
    for argv in (["ps", DUMP, "--pid", "2", "--json"], ["bt", DUMP, "--pid", "2", "--json"]):
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        docs[argv[0]] = doc["tasks"][0] if "tasks" in doc else doc
    assert main(["check", DUMP, "--pid", "2", "--json"]) == 0
    (docs["check"],) = json.loads(capsys.readouterr().out)
    fields = set(docs["ps"])
    assert {"pid", "ppid", "comm", "state", "cpu", "last_cpu", "task", "start_time_ns"} <= fields
    for name in ("bt", "check"):
        assert {k: docs[name][k] for k in fields} == docs["ps"], name
    assert (docs["ps"]["pid"], docs["ps"]["ppid"]) == (2, guest[2]["ppid"])
    assert docs["ps"]["comm"] == guest[2]["comm"] == "kthreadd"
