"""Issue 27 (round two of hostile input), findings 4, 6, 8, 11 and 12: each on an edited copy
of a bundled real sample made here, failing before its fix."""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import zstandard

from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from parsers.dumps.elfcore import ElfCore, Note
from parsers.s390.layouts import NT_S390_PREFIX
from tests.helpers.edited import REAL, EditedDump, cli

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


def test_json_output_with_del_and_c1_in_a_comm_still_parses(tmp_path: Path) -> None:
    """JSON output escapes DEL and the C1 controls itself (``\\u007f``: json's ensure_ascii), so
    the terminal escaping never turns them into ``\\x7f``, which no JSON parser reads."""
    dump = EditedDump.of(tmp_path)
    task = dump.scan.by_pid(1)[0]
    raw = b"a\x7fb\xc2\x9bc"  # DEL, and CSI (a C1 control) in UTF-8, as prctl can set them
    dump.poke(task.address + dump.offset_of("task_struct.comm"), raw + b"\0")
    for argv in (["ps", "--json"], ["check", "--json", "--all"], ["bt", "--pid", "1", "--json"]):
        rc, out, err = cli(argv[0], str(dump.path), *argv[1:])
        assert rc in (0, 1), err
        assert "\x7f" not in out and "\\x7f" not in out, argv
        doc = json.loads(out)
        assert "a\x7fb" in json.dumps(doc, ensure_ascii=False), argv


# -- 4, 6, 12: the printk ring -----------------------------------------------------------------
def vmcoreinfo_edit(dump: EditedDump, old: bytes, new: bytes) -> None:
    """Replace a VMCOREINFO line (same length) wherever the copy holds it."""
    assert len(old) == len(new)
    data = dump.file_bytes()
    assert data.count(old) >= 1
    dump.path.write_bytes(bytes(data.replace(old, new)))


def test_printk_sizes_from_vmcoreinfo_are_checked(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    vmcoreinfo_edit(dump, b"SIZE(prb_desc)=24\n", b"SIZE(prb_desc)=00\n")
    rc, _, err = cli("log", str(dump.path))
    assert rc == 2 and err.count("\n") == 1 and "SIZE(prb_desc)=0" in err, err
    assert cli("info", str(dump.path))[0] == 0  # the rest of the dump still reads


def test_printk_offset_outside_its_struct_is_one_line(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    vmcoreinfo_edit(dump, b"OFFSET(printk_info.seq)=0\n", b"OFFSET(printk_info.seq)=9\n")
    rc, _, err = cli("log", str(dump.path))
    assert rc == 0, err  # 9 + 8 <= 88: read, garbage sequence numbers but no crash
    vmcoreinfo_edit(dump, b"OFFSET(prb_desc.state_var)=0\n", b"OFFSET(prb_desc.state_var)=9\n")
    rc, _, err = cli("log", str(dump.path))  # every descriptor's state now reads wrong
    assert rc == 2 and "holds a finished record" in err and err.count("\n") == 1, err
    vmcoreinfo_edit(dump, b"OFFSET(prb_desc.state_var)=9\n", b"OFFSET(prb_desc.state_var)=W\n")
    vmcoreinfo_edit(dump, b"OFFSET(printk_info.seq)=9\n", b"OFFSET(printk_info.seq)=W\n")
    rc, _, err = cli("log", str(dump.path))
    assert rc == 2 and "lacks OFFSET(prb_desc.state_var)" in err, err


def prb(dump: EditedDump) -> int:
    info = dump.kernel.vmcoreinfo
    assert info is not None
    return int.from_bytes(dump.kernel.read(info.symbol("prb") or 0, 8), "big")


def test_printk_ring_larger_than_memory_is_refused(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    dump.poke_u32(prb(dump) + 48, 31)  # text_data_ring.size_bits: a 2 GiB ring in 128 MiB
    rc, _, err = cli("log", str(dump.path))
    assert rc == 2 and "larger than the dump's 134217728 bytes of memory" in err, err


def test_unreadable_printk_ring_is_an_error_not_an_empty_log(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    dump.poke_u64(prb(dump) + 8, 0x3FF_0000_0000)  # desc_ring.descs: nowhere
    rc, out, err = cli("log", str(dump.path))
    assert rc == 2 and out == "" and "the kernel log is unreadable" in err, err


def test_printk_member_past_its_struct_is_refused(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    vmcoreinfo_edit(
        dump, b"OFFSET(printk_info.text_len)=16\n", b"OFFSET(printk_info.text_len)=99\n"
    )
    rc, _, err = cli("log", str(dump.path))
    assert rc == 2 and "OFFSET(printk_info.text_len)=99, outside its 88-byte struct" in err, err


# -- 4: task discovery --------------------------------------------------------------------------
def zero_region(dump: EditedDump, size: int) -> int:
    """A kernel virtual address (identity map) starting ``size`` zero bytes in the dump."""
    data = dump.file_bytes()
    core = ElfCore(str(dump.path))
    try:
        seg = core.segments[0]
    finally:
        core.close()
    zero = bytes(size)
    pa = 0x4000000  # past the kernel image, in memory the idle guest never touched
    while pa + size <= seg.filesz:
        if data[seg.offset + pa : seg.offset + pa + size] == zero:
            return pa
        pa += 1 << 16
    raise AssertionError("no zero region")


def forged_task_chain(dump: EditedDump, nodes: int) -> None:
    """init_task.tasks running through ``nodes`` list entries 8 bytes apart: each a candidate
    task_struct overlapping the next, whose signal pointer leads back into the chain."""
    base = zero_region(dump, nodes * 8 + 8192) + 4096
    chain = b"".join(struct.pack(">Q", base + 8 * (i + 1)) for i in range(nodes - 1))
    head = dump.symbol("init_task") + dump.offset_of("task_struct.tasks")
    data = dump.file_bytes()
    at = dump.offset(base)
    data[at : at + len(chain) + 8] = chain + struct.pack(">Q", head)
    data[dump.offset(head) : dump.offset(head) + 8] = struct.pack(">Q", base)
    dump.path.write_bytes(bytes(data))


def test_task_discovery_is_linear_and_bounded_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = EditedDump.of(tmp_path)
    nodes = 40_000  # 320 KB of edits: took more than 60 s (every thread walk ran the chain)
    forged_task_chain(dump, nodes)
    kernel = open_kernel(str(dump.path))
    reads = [0]
    real = kernel.space.read_u64

    def counting(va: int) -> int:
        reads[0] += 1
        return real(va)

    monkeypatch.setattr(kernel.space, "read_u64", counting)
    scan = find_tasks(kernel)
    room = kernel.memory_size // dump.kernel.types.sizes["task_struct"]  # type: ignore[union-attr]
    assert reads[0] < 4 * room  # each candidate read a bounded number of times, not per walk
    assert any(f"more than {room} entries" in w for w in scan.warnings), scan.warnings
    failed = [w for w in scan.warnings if "failed a task_struct's sanity checks" in w]
    assert failed and "29127 task candidate(s) failed" in failed[0], scan.warnings
    assert len(scan.tasks) < 100  # the real swapper tasks, not thousands of invented ones
    kernel.close()


# -- 4: module symbol tables --------------------------------------------------------------------
def test_module_string_table_is_read_within_its_bound(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path, "deb12-6.1-modules")
    k = dump.kernel
    ext4 = next(m for m in k.modules.modules if m.name == "ext4")
    ks = k.space.read_u64(ext4.address + dump.offset_of("module.kallsyms"))
    symtab = k.space.read_u64(ks)
    dump.poke_u64(ks + 16, 0x1000)  # strtab into the identity map: every byte readable
    dump.poke_u32(symtab + 24, 100 << 20)  # symbol 1's name 100 MiB into it
    kernel = open_kernel(str(dump.path))
    tracemalloc.start()
    try:
        scan = kernel.modules
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        kernel.close()
    assert peak < 16 << 20  # was the 100 MiB read of the whole "string table"
    assert any(
        w.startswith("module ext4: symbols unreadable: a name at offset") for w in scan.warnings
    )
    assert len(scan.symbols) == 5  # the other modules keep their symbols


def test_module_symbols_are_bounded_in_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.model.modules

    dump = EditedDump.of(tmp_path, "deb12-6.1-modules", map_too=True)
    monkeypatch.setattr(explorer.model.modules, "MAX_SYMBOLS_TOTAL", 1300)
    kernel = open_kernel(str(dump.path))
    try:
        scan = kernel.modules
    finally:
        kernel.close()
    assert sum(t.read for t in scan.symbols.values()) <= 1300
    assert any("more than 1300 module symbols in all" in w for w in scan.warnings), scan.warnings


# -- 6: tracebacks that are now one line -------------------------------------------------------
def test_long_osrelease_chooses_no_path(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path, map_too=False)
    dump.rewrite_vmcoreinfo(lambda t: re.sub(r"OSRELEASE=\S+", "OSRELEASE=" + "x" * 300, t))
    for command in ("info", "check"):
        rc, _out, err = cli(command, str(dump.path))
        assert "File name too long" not in err and "Traceback" not in err
        assert rc in (0, 2) and err.count("\n") <= 3, err


def test_self_relative_kallsyms_leading_below_zero_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = EditedDump.of(tmp_path, "sid-7.2-modules", map_too=False)
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path / "cache"))  # no table cached before
    dump.rewrite_vmcoreinfo(
        lambda t: re.sub(r"SYMBOL\(kallsyms_offsets\)=\w+", "SYMBOL(kallsyms_offsets)=100000", t)
    )
    _rc, _out, err = cli("info", str(dump.path))
    assert "Traceback" not in err and "OverflowError" not in err
    kernel = open_kernel(str(dump.path))
    try:
        assert any("lead outside the 64-bit address space" in w for w in kernel.warnings)
    finally:
        kernel.close()


def test_deeply_nested_profile_is_one_line(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    profile = tmp_path / "deep.profile.json"
    profile.write_text("[" * 100_000 + "]" * 100_000)
    rc, _, err = cli("info", str(dump.path), "--profile", str(profile))
    assert rc == 2 and err.count("\n") == 1 and "nested too deep" in err, err
    results = tmp_path / "results.jsonl"
    results.write_text("[" * 2000 + "]" * 2000 + "\n")  # fits a 4096-character line
    rc, _, err = cli("scenarios", "results", str(results))
    assert rc == 2 and err.count("\n") == 1 and "nested too deep" in err, err


def test_eio_on_read_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = EditedDump.of(tmp_path)
    real_read = os.read

    def failing(fd: int, n: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}") == str(dump.path):
            raise OSError(errno.EIO, "Input/output error")
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", failing)
    rc, _, err = cli("info", str(dump.path))
    assert rc == 2 and err == f"backchain: {dump.path}: cannot read: Input/output error\n"
    monkeypatch.setattr(
        "explorer.cli.info.cmd_info", lambda args: (_ for _ in ()).throw(OSError(errno.EIO, "x"))
    )
    rc, _, err = cli("info", str(dump.path))  # any OSError a reader let through: one line
    assert rc == 2 and err == "backchain: x\n"


def test_one_bad_dump_of_a_fleet_is_reported_and_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump whose reading raises an unexpected exception, and one that kills its worker
    process (SIGBUS of a shrinking map): each is its own one-line error."""
    import explorer.model.opening
    from explorer.model.kernel import Kernel

    dump = EditedDump.of(tmp_path)
    raises, dies = tmp_path / "raises.vmcore", tmp_path / "dies.vmcore"
    raises.write_bytes(b"x")
    dies.write_bytes(b"x")
    real_open = explorer.model.opening.open_kernel

    def fake_open(path: str, *args: Any, **kwargs: Any) -> Kernel:
        if path == str(raises):
            raise RuntimeError("boom")
        if path == str(dies):
            os.kill(os.getpid(), 9)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(explorer.model.opening, "open_kernel", fake_open)  # forks inherit it
    rc, out, err = cli("check", str(dump.path), str(raises), str(dies), "--jobs", "2", "--json")
    assert rc == 2
    report = json.loads(out)
    assert len(report["dumps"]) == 3
    assert f"backchain: {raises}: internal error reading it (RuntimeError: boom)" in err
    assert f"backchain: {dies}: the process reading it died (a signal)" in err
    good = next(d for d in report["dumps"] if d["path"] == str(dump.path))
    assert good["tasks"] == 64 and good.get("error") is None, good


# -- 8: truncated or foreign symbol maps ----------------------------------------------------------
def system_map_text(name: str = "deb12-6.1-idle") -> bytes:
    return (
        zstandard.ZstdDecompressor()
        .stream_reader((REAL / name / "System.map.zst").open("rb"))
        .read()
    )


def test_truncated_system_map_is_refused(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path, map_too=False)
    full = system_map_text()
    cut = full[: full.index(b"\n", 1 << 20) + 1]  # the first MiB of 2.7: a download cut short
    (tmp_path / "System.map").write_bytes(cut)
    rc, _, err = cli("check", str(dump.path), "--map", str(tmp_path / "System.map"))
    assert rc == 2 and err.count("\n") == 1, err
    assert "the file has no _etext" in err and "does not belong to the dump" in err
    rc, _out, err = cli("check", str(dump.path))  # found beside the dump: skipped, said so
    assert "skipped System.map" in err and "no _etext" in err


def test_made_up_system_map_is_refused(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path, map_too=False)
    made_up = tmp_path / "System.map"
    made_up.write_text(
        "0000000000100000 T _stext\n0000000000a00000 T _etext\n0000000000ec0900 D init_task\n"
    )
    rc, _, err = cli("check", str(dump.path), "--map", str(made_up))
    assert rc == 2 and "nothing in the dump confirms it" in err, err
    rc, _, err = cli("check", str(dump.path), "--map", str(made_up), "--force")
    assert "FORCED" in err  # used only when asked, and then every output says so


def test_genuine_map_still_agrees(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    kernel = open_kernel(str(dump.path))
    try:
        assert kernel.symbols is not None and "System.map" in kernel.symbols.source
        assert not kernel.skipped and not kernel.forced
    finally:
        kernel.close()


# -- 12: values taken without a warning -----------------------------------------------------------
def test_parent_cycle_hides_no_task_from_the_tree(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    init = dump.scan.by_pid(1)[0]
    child = next(t for t in dump.scan.tasks if t.ppid == 1)
    dump.poke_u64(init.address + dump.offset_of("task_struct.real_parent"), child.address)
    rc, out, err = cli("ps", str(dump.path), "--tree")
    assert rc == 0
    shown = re.findall(r"\((\d+)\)$", out, re.M)
    assert len(shown) == len(dump.scan.tasks)  # every task, the two in the loop too
    assert f"({init.pid})" in out and f"({child.pid})" in out
    assert "loop back (real_parent is damaged)" in err


def test_parent_chain_deeper_than_the_tree_is_cut(tmp_path: Path) -> None:
    from explorer.model.tasks import Task
    from explorer.reports.pstree import MAX_DEPTH, roots, tree_lines, tree_warnings

    tasks = [
        Task(0x1000 * (i + 1), i + 1, i + 1, i, "t", "S", 1, 0, 0, None, 0, 0, 0, 16384, "x")
        for i in range(3000)
    ]
    nodes = roots(tasks, tasks)
    assert len(tree_lines(nodes)) == MAX_DEPTH + 1  # no RecursionError, drawn to the cut
    assert tree_warnings(nodes) == [
        f"process tree deeper than {MAX_DEPTH} levels: cut there (2871 task(s))"
    ]


def test_thread_size_from_a_profile_is_checked_against_init_stack(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    doc = json.loads((REAL.parent / "profiles" / "6.1.0-50-s390x.profile.json").read_text())
    doc["sizes"]["thread_union"] = 1 << 20
    profile = tmp_path / "forged.profile.json"
    profile.write_text(json.dumps(doc))
    kernel = open_kernel(str(dump.path), Options(profile=str(profile)))
    try:
        assert kernel.thread_size == 16384 and kernel.thread_size_source == "init_stack's span"
        assert any(w.startswith("THREAD_SIZE 1048576 from profile:") for w in kernel.warnings)
    finally:
        kernel.close()


def one_lowcore_for_two_cpus(dump: EditedDump) -> Note:
    """CPU 1's prefix note made CPU 0's; returns CPU 0's note."""
    core = ElfCore(str(dump.path))
    try:
        first, second = [n for n in core.notes if n.type == NT_S390_PREFIX][:2]
    finally:
        core.close()
    with open(dump.path, "r+b") as f:
        f.seek(second.offset + 12 + ((len(second.name) + 4) & ~3))
        f.write(first.desc)
    return first


def test_two_cpus_on_one_lowcore_are_a_warning(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    first = one_lowcore_for_two_cpus(dump)
    rc, out, _ = cli("info", str(dump.path))
    assert rc == 0
    prefix = int.from_bytes(first.desc, "big")
    assert f"note: CPUs 0 and 1 have the same prefix 0x{prefix:x}" in out, out


def test_split_layout_kernel_without_vmcoreinfo_is_a_warning(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path, "sid-7.2-modules")
    with open(dump.path, "r+b") as f:
        f.seek(dump.offset(0) + 0xE0C)
        f.write(bytes(8))  # no VMCOREINFO pointer
    rc, out, err = cli("info", str(dump.path))
    assert rc in (0, 2) and "Traceback" not in err
    assert "note: no VMCOREINFO: virtual address layout assumed legacy (<= v6.9)" in out, out


def test_release_that_init_uts_ns_contradicts_is_a_warning(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    vmcoreinfo_edit(dump, b"OSRELEASE=6.1.0-50-s390x\n", b"OSRELEASE=5.4.0-50-s390x\n")
    kernel = open_kernel(str(dump.path))
    try:
        assert any(
            w.startswith(
                "VMCOREINFO says release 5.4.0-50-s390x but init_uts_ns in memory says "
                "6.1.0-50-s390x"
            )
            for w in kernel.warnings
        ), kernel.warnings
    finally:
        kernel.close()


def test_explorer_lowcore_screen_with_two_cpus_on_one_lowcore(tmp_path: Path) -> None:
    """Both lowcores then say CPU 0: the tabs were keyed by that number (a ValueError the
    explorer fuzz target found)."""
    import asyncio

    from explorer.tui.app import BackchainApp
    from explorer.tui.screens.lowcore import LowcoreScreen
    from tests.test_tui import wait_checked

    dump = EditedDump.of(tmp_path)
    one_lowcore_for_two_cpus(dump)

    async def session() -> None:
        app = BackchainApp(str(dump.path), Options())
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_checked(app, pilot)
            await pilot.press("l", "]", "]")
            await pilot.pause()
            assert isinstance(app.screen, LowcoreScreen) and app.screen.index == 0

    asyncio.run(session())


def test_release_and_log_text_reach_the_terminal_escaped(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path)
    evil = "\x1b]0;x\x07\x1b[2J"
    release = ("6.1" + evil).ljust(len("6.1.0-50-s390x"), "y")
    vmcoreinfo_edit(dump, b"OSRELEASE=6.1.0-50-s390x\n", f"OSRELEASE={release}\n".encode())
    data = dump.file_bytes()  # the log's record (and every other copy of the words)
    dump.path.write_bytes(
        bytes(data.replace(b"Kernel command line:", b"\x1b[31m\x07 command line:"))
    )
    rc, out, err = cli("info", str(dump.path))
    assert rc == 0 and "\\x1b]0;x\\x07\\x1b[2J" in out
    rc, out, err = cli("log", str(dump.path), "--grep", "command line:")
    assert rc == 0 and "\\x1b[31m\\x07" in out, (out, err)
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text


def test_symbol_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    dump = EditedDump.of(tmp_path, map_too=False)
    text = system_map_text().replace(b" t __schedule\n", b" t \x1b[2J__schedule\n")
    (tmp_path / "System.map").write_bytes(text)
    rc, out, err = cli("bt", str(dump.path), "--pid", "1")
    assert rc == 0 and "\\x1b[2J__schedule+0x" in out, (out, err)
    assert "\x1b" not in out + err
