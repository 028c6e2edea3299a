"""``--types probe``: struct offsets inferred from the dump itself (explorer.sources.probe).

Truth: the kernels' own types: the bundled profiles in samples/profiles/ (made from the -dbg
vmlinux DWARF of 5.10, 6.1 and 6.12) and the BTF inside the 6.12 and 7.2 dumps; and the
output of ``ps``, ``check`` and ``bt`` with each sample's System.map (which uses those types).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Kernel, Options
from explorer.model.opening import open_kernel
from explorer.sources import probe
from parsers.errors import TypeInfoError
from parsers.types.profile import TypeProfile

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "real"
PROFILES = ROOT / "samples" / "profiles"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())
DUMP61 = SAMPLES / "deb12-6.1-idle" / "vmcore.zst"
#: Samples with loaded modules (a task sleeps in module code: jbd2's kjournald2).
WITH_MODULES = ("deb12-6.1-modules", "sid-7.2-modules")


def _map(name: str) -> list[str]:
    return ["--map", str(SAMPLES / name / "System.map.zst")]


def _outputs(capsys: pytest.CaptureFixture[str], dump: str, extra: list[str]) -> dict[str, str]:
    out = {}
    for command in (["ps"], ["check"], ["bt", "--pid", "1"], ["bt", "--cpu", "0"]):
        rc = main([command[0], dump, *command[1:], *extra])
        out[" ".join(command)] = f"rc={rc}\n{capsys.readouterr().out}"
    return out


#: The probe infers no ``klp_*`` struct: with it, check, ps and bt cannot replay a livepatch
#: transition, which the livepatch samples have (tests/test_klp_real.py covers them).
WITHOUT_LIVEPATCH = [name for name in NAMES if not name.startswith("klp-")]


@pytest.mark.parametrize("name", WITHOUT_LIVEPATCH)
def test_probe_gives_the_output_of_the_kernels_types(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = str(SAMPLES / name / "vmcore.zst")
    with_map = _outputs(capsys, dump, _map(name))
    assert all(text.startswith("rc=0\n") and len(text) > 200 for text in with_map.values())
    monkeypatch.setattr("explorer.sources.companions.companion_folders", lambda path: [])
    assert _outputs(capsys, dump, ["--types", "probe"]) == with_map  # symbols: kallsyms


def _truths(name: str) -> Iterator[TypeProfile]:
    """The kernel's own types for a sample: its bundled DWARF profile, its BTF."""
    options = Options(system_map=str(SAMPLES / name / "System.map.zst"))
    for types in ("bundled", "btf"):
        try:
            k = open_kernel(
                str(SAMPLES / name / "vmcore.zst"), dataclasses.replace(options, types=types)
            )
        except TypeInfoError:
            continue
        assert k.types is not None
        yield k.types
        k.close()


@pytest.mark.parametrize("name", NAMES)
def test_probe_offsets_equal_the_kernels_types(name: str) -> None:
    k = open_kernel(
        str(SAMPLES / name / "vmcore.zst"),
        Options(system_map=str(SAMPLES / name / "System.map.zst"), types="probe"),
    )
    found = k.types
    assert found is not None and found.source == "probe"
    k.close()
    truths = list(_truths(name))
    assert truths, f"no DWARF profile nor BTF for {name}"
    for truth in truths:
        for key, offset in found.offsets.items():
            assert truth.offsets[key] == offset, (key, truth.source)
        assert truth.thread_size == found.thread_size
        assert truth.sizes["task_struct.comm"] == found.sizes["task_struct.comm"]
    # what task discovery and the walk read is all there, each with its evidence
    for key in (
        "task_struct.tasks",
        "task_struct.pid",
        "task_struct.tgid",
        "task_struct.comm",
        "task_struct.stack",
        "task_struct.exit_state",
        "task_struct.flags",
        "task_struct.real_parent",
        "task_struct.thread.ksp",
        "task_struct.signal",
        "task_struct.thread_node",
        "signal_struct.thread_head",
    ):
        assert found.source_of(key).startswith("probe: "), key
    assert "ftrace_ret_stack" in found.missing and "pt_regs" in found.missing
    if name in WITH_MODULES:  # text ranges and symbols of modules: compared above
        assert {"module.kallsyms", "mod_kallsyms.typetab"} <= set(found.offsets)
        assert found.has("module.mem") or found.has("module.core_layout.text_size")


def test_auto_falls_back_to_probe_when_nothing_else_exists(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("explorer.sources.companions.companion_folders", lambda path: [])
    with_profile = _outputs(capsys, str(DUMP61), [])
    monkeypatch.setattr("explorer.sources.bundled.BUNDLED_PROFILES", tmp_path)  # none bundled
    assert _outputs(capsys, str(DUMP61), []) == with_profile
    assert main(["info", str(DUMP61)]) == 0
    info = capsys.readouterr().out
    assert "types        probe (" in info and "era table for 6.1.0-50-s390x" in info
    assert main(["ps", "-v", str(DUMP61)]) == 0
    text = capsys.readouterr()
    verbose = text.out + text.err
    assert "offset task_struct.stack = 0x20 (probe: each CPU's lowcore.kernel_stack" in verbose
    assert "offset task_struct.comm = 0x938 (probe: where init_task holds 'swapper/0')" in verbose


def _patched(
    read: Callable[[int, int], bytes], patches: dict[int, bytes]
) -> Callable[[int, int], bytes]:
    """``read`` with the bytes of ``patches`` (address -> bytes) written over memory."""

    def patched_read(address: int, size: int) -> bytes:
        raw = bytearray(read(address, size))
        for at, data in patches.items():
            lo, hi = max(at, address), min(at + len(data), address + size)
            if lo < hi:
                raw[lo - address : hi - address] = data[lo - at : hi - at]
        return bytes(raw)

    return patched_read


def _refusal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    patch: Callable[[Kernel], dict[int, bytes]],
) -> str:
    """The one line ``ps --types probe`` prints when ``patch`` rewrites memory it reads."""
    real = open_kernel(str(DUMP61), Options(system_map=str(DUMP61.parent / "System.map.zst")))
    patches = patch(real)
    real.close()
    infer = probe.infer_offsets

    def infer_on_patched(inp: probe.ProbeInput) -> probe.Inferred:
        return infer(dataclasses.replace(inp, read=_patched(inp.read, patches)))

    monkeypatch.setattr(probe, "infer_offsets", infer_on_patched)
    monkeypatch.setattr("explorer.sources.companions.companion_folders", lambda path: [])
    assert main(["ps", str(DUMP61), "--types", "probe"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(DUMP61) in lines[0] and "--types probe" in lines[0]
    return lines[0]


def _tasks(k: Kernel) -> list[int]:
    from explorer.model.tasks import find_tasks

    return [t.address for t in find_tasks(k).tasks]


def test_a_second_pid_candidate_is_refused_not_guessed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every task's pid and tgid copied 0x100 bytes further: three words now fit pid."""

    def copy_pids(k: Kernel) -> dict[int, bytes]:
        assert k.types is not None
        pid = k.types.offset("task_struct.pid")
        return {t + pid + 0x100: k.read(t + pid, 4) for t in _tasks(k)}

    line = _refusal(capsys, monkeypatch, copy_pids)
    assert "task_struct.pid: ambiguous: 3 offsets (0x788, 0x78c, 0x888)" in line


def test_a_second_ksp_candidate_is_refused_not_guessed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every task's thread.ksp copied into a spare word: two offsets fit ksp."""

    def copy_ksp(k: Kernel) -> dict[int, bytes]:
        assert k.types is not None
        ksp = k.types.offset("task_struct.thread.ksp")
        return {t + ksp + 0x200: k.read(t + ksp, 8) for t in _tasks(k)}

    line = _refusal(capsys, monkeypatch, copy_ksp)
    assert "task_struct.thread.ksp: ambiguous: 2 offsets (0xd50, 0xf50)" in line


def test_no_init_task_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text-only kallsyms (no init_task symbol) and no 'swapper/0' in memory."""

    def rename(k: Kernel) -> dict[int, bytes]:
        assert k.types is not None
        init = k.symbols.require("init_task") if k.symbols else 0
        return {init + k.types.offset("task_struct.comm"): b"swapper/9"}

    line = _refusal(capsys, monkeypatch, rename)
    assert "init_task: 0 static tasks hold 'swapper/0'" in line


def test_inference_on_crafted_tasks() -> None:
    """Three tasks built from nothing: the probe finds each member where it was put."""
    memory = _Crafted()
    found = probe.infer_offsets(memory.input())
    assert found.init_task == memory.init
    for name, offset in _Crafted.LAYOUT.items():
        assert found.offsets[name] == offset, name
    assert found.sizes["thread_union"] == 16384


class _Crafted:
    """init_task, init and kthreadd (plus two kthreads) in a sparse big-endian memory."""

    LAYOUT = {
        "task_struct.thread_info.cpu": 0x10,
        "task_struct.__state": 0x18,
        "task_struct.stack": 0x20,
        "task_struct.flags": 0x2C,
        "task_struct.tasks": 0x100,
        "task_struct.exit_state": 0x120,
        "task_struct.pid": 0x140,
        "task_struct.tgid": 0x144,
        "task_struct.real_parent": 0x148,
        "task_struct.thread_node": 0x180,
        "task_struct.comm": 0x200,
        "task_struct.signal": 0x220,
        "task_struct.thread.ksp": 0x300,
    }

    def __init__(self) -> None:
        self.bytes: dict[int, int] = {}
        self.init = 0x100000
        tasks = [0x200000 + i * 0x10000 for i in range(4)]  # init, kthreadd, two kthreads
        order = [self.init, *tasks]
        o = self.LAYOUT
        names = [b"swapper/0", b"init", b"kthreadd", b"kworker/0:0", b"ksoftirqd/1"]
        states = [0, 1, 1, 0x402, 0]  # init_task and ksoftirqd/1 run
        flags = [0x00200002, 0x400100, 0x00208040, 0x04208060, 0x04208040]
        parents = [self.init, self.init, self.init, tasks[1], tasks[1]]
        self.cpus = ((0, self.init, 0x800000 + 16024), (1, tasks[3], 0xC00000 + 16024))
        for i, t in enumerate(order):
            nxt, prv = order[(i + 1) % len(order)], order[i - 1]
            self.u64(t + o["task_struct.tasks"], nxt + o["task_struct.tasks"])
            self.u64(t + o["task_struct.tasks"] + 8, prv + o["task_struct.tasks"])
            self.u32(t + o["task_struct.pid"], i)
            self.u32(t + o["task_struct.tgid"], i)
            self.u64(t + o["task_struct.real_parent"], parents[i])
            self.u64(t + o["task_struct.real_parent"] + 8, parents[i])  # parent
            self.u64(t + o["task_struct.real_parent"] + 0x30, t)  # group_leader
            self.put(t + o["task_struct.comm"], names[i].ljust(16, b"\0"))
            self.u32(t + o["task_struct.__state"], states[i])
            self.u32(t + o["task_struct.flags"], flags[i])
            self.u32(t + o["task_struct.exit_state"] + 8, 0 if i < 3 else 17)  # exit_signal
            self.u32(t + o["task_struct.thread_info.cpu"], 1 if i == 4 else 0)
            stack = 0x800000 + i * 0x100000 if i else 0x800000
            self.u64(t + o["task_struct.stack"], stack)
            ksp = stack + 16384 - 360 - 0x200
            self.u64(t + o["task_struct.thread.ksp"], ksp)
            signal = 0x600000 + i * 0x1000
            self.u64(t + o["task_struct.signal"], signal)
            node, head = t + o["task_struct.thread_node"], signal + 0x10
            self.u64(node, head)
            self.u64(node + 8, head)
            self.u64(head, node)
            self.u64(head + 8, node)

    def u64(self, address: int, value: int) -> None:
        self.put(address, struct.pack(">Q", value))

    def u32(self, address: int, value: int) -> None:
        self.put(address, struct.pack(">I", value))

    def put(self, address: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.bytes[address + i] = b

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.bytes.get(address + i, 0) for i in range(size))

    def input(self) -> probe.ProbeInput:
        return probe.ProbeInput(
            read=self.read, cpus=self.cpus, stack_init_extra=360, init_task=self.init
        )


@pytest.mark.parametrize("name", WITH_MODULES)
def test_probe_lists_the_modules_with_unknown_taints(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mod``: the modules, bases, sizes, states and symbol counts of the kernel's types;
    the taint, which the probe does not infer, is ``?`` (not ``-``, untainted)."""
    dump = str(SAMPLES / name / "vmcore.zst")
    assert main(["mod", dump, *_map(name)]) == 0
    with_map = capsys.readouterr().out.splitlines()
    monkeypatch.setattr("explorer.sources.companions.companion_folders", lambda path: [])
    assert main(["mod", dump, "--types", "probe"]) == 0
    probed = capsys.readouterr().out.splitlines()
    assert len(probed) == len(with_map) > 2
    for a, b in zip(with_map[1:], probed[1:], strict=True):
        assert a.split()[:5] + a.split()[6:] == b.split()[:5] + b.split()[6:]
        assert a.split()[5] == "-" and b.split()[5] == "?"


def test_without_evidence_auto_says_why_and_probe_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A synthetic dump has no init_task: ``auto`` finds no types and says why the probe
    failed where types are needed; ``--types probe`` is refused in one line."""
    from tests.helpers.dumps import two_cpu_dump

    dump = str(two_cpu_dump(tmp_path))
    assert main(["ps", dump]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task_struct layout unknown" in err
    assert "(--types probe: init_task: no init_task symbol" in err
    assert main(["ps", dump, "--types", "probe"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"backchain: {dump}: --types probe: init_task: no init_task symbol and no "
        "data section to find it in"
    )
