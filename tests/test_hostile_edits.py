"""Issue 27 (round two of hostile input), findings 4, 6, 8, 11 and 12: each on an edited copy
of a bundled real sample made here, failing before its fix."""

from __future__ import annotations

from pathlib import Path

from tests.edited import EditedDump, cli

ESC = "\x1b]0;owned\x07\x1b[2J"


# -- 6, 12: the shell --------------------------------------------------------------------------
def test_shell_survives_bad_addresses_and_long_lines(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    script = "task 0xzz\nset 0xzz\n" + "ps " + "x" * (2 << 20) + "\nset 1\n"
    _, out, err = cli("shell", str(dump.path), stdin=script)
    assert "'0xzz' is not a hex task address" in err
    assert "line longer than 65536 characters ignored" in err
    assert "PID: 1       TASK: 0x" in out  # the shell went on after the bad lines
    assert "Traceback" not in err


def test_task_with_bad_hex_address_is_one_line(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    rc, _, err = cli("task", str(dump.path), "0xzz")
    assert rc == 2 and err.count("\n") == 1 and "not a hex task address" in err


# -- 11: terminal escapes ----------------------------------------------------------------------
def test_control_characters_from_the_dump_reach_the_terminal_escaped(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    task = dump.scan.by_pid(1)[0]
    dump.poke(task.address + dump.offset_of("task_struct.comm"), ESC.encode()[:15] + b"\0")
    for argv in (["ps"], ["bt", "--pid", "1"], ["check", "--all"]):
        rc, out, err = cli(argv[0], str(dump.path), *argv[1:])
        assert rc in (0, 1), err
        assert "\x1b" not in out + err and "\x07" not in out + err, argv
        assert "\\x1b]0;owned\\x07" in out, argv
    rc, out, _ = cli("ps", str(dump.path), "--json")
    assert "\\u001b]0;owned\\u0007" in out  # JSON was safe already: its escapes unchanged
