"""``backchain klp`` on the real livepatch dumps (samples/real/klp-*): the truth is the
guest's own view written just before the dump (facts.json "livepatch": sysfs, every task's
/proc/PID/task/TID/patch_state, and the kernel's dynamic-debug lines of its last retry,
``livepatch: klp_try_switch_task: COMM:PID is sleeping on function F``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.livepatch.replay import Replay, kernel_order, replay
from explorer.livepatch.state import LivepatchState, read_livepatch, task_patch_states
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import TaskScan, find_tasks

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("klp-*") if (p / "vmcore.zst").is_file())

pytestmark = pytest.mark.skipif(not NAMES, reason="no real livepatch sample bundled")


@cache
def _open(name: str) -> tuple[Kernel, TaskScan, LivepatchState, dict[str, Any]]:
    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    state = read_livepatch(kernel)
    assert isinstance(state, LivepatchState)
    facts = json.loads((SAMPLES / name / "facts.json").read_text())["livepatch"]
    return kernel, find_tasks(kernel), state, facts


@cache
def _replay(name: str) -> Replay | None:
    kernel, scan, state, _ = _open(name)
    return replay(kernel, state, scan) if state.transition_patch is not None else None


@pytest.mark.parametrize("name", NAMES)
def test_patches_objects_and_functions_as_sysfs_shows_them(name: str) -> None:
    _, _, state, facts = _open(name)
    ours = {
        p.name: {
            "enabled": int(p.enabled),
            "transition": int(p is state.transition_patch),
            "replace": int(p.replace),
            # sysfs names a function "OLD_NAME,SYMPOS" with sympos 1 for 0 (klp_init_func)
            "objects": {
                o.label: (int(o.patched), sorted((f.old_name, f.old_sympos or 1) for f in o.funcs))
                for o in p.objects
            },
        }
        for p in state.patches
    }
    theirs = {
        p["name"]: {
            "enabled": p["enabled"],
            "transition": p["transition"],
            "replace": p["replace"],
            "objects": {
                o["name"]: (
                    o["patched"],
                    sorted((f["name"], f["sympos"]) for f in o["functions"]),
                )
                for o in p["objects"]
            },
        }
        for p in facts["patches"]
    }
    assert ours == theirs


@pytest.mark.parametrize("name", NAMES)
def test_every_task_patch_state_as_proc_shows_it(name: str) -> None:
    kernel, scan, state, facts = _open(name)
    threads, _, _ = kernel_order(kernel, scan)
    states = task_patch_states(kernel, threads, state.tif_bit)
    ours = {t.pid: states[t.address].patch_state for t in threads}
    theirs = {s["pid"]: s["patch_state"] for s in facts["patch_state"]}
    # the shell that wrote the truth forks a reader per task: those are gone in the dump
    common = ours.keys() & theirs.keys()
    assert len(common) > 0.8 * len(theirs)
    assert {p: ours[p] for p in common} == {p: theirs[p] for p in common}


@pytest.mark.parametrize("name", NAMES)
def test_pending_flag_follows_patch_state(name: str) -> None:
    """klp_start_transition() sets TIF_PATCH_PENDING on exactly the tasks not yet in the
    target state, and switching clears it: the bit number of this era is right."""
    kernel, scan, state, _ = _open(name)
    threads, idle, _ = kernel_order(kernel, scan)
    tasks = [*threads, *(t for _, t in idle)]
    states = task_patch_states(kernel, tasks, state.tif_bit)
    if state.transition_patch is None:
        assert not any(s.pending for s in states.values())
        assert {s.patch_state for s in states.values()} == {-1}
    else:
        wrong = [
            t.pid
            for t in tasks
            if states[t.address].pending != (states[t.address].patch_state != state.target_state)
        ]
        assert wrong == []


@pytest.mark.parametrize("name", NAMES)
def test_blocking_tasks_are_the_kernels_own_lines(name: str) -> None:
    """The kernel's klp_try_switch_task() lines of its last retry, line for line and in
    order, against the replay's blocking tasks."""
    _, _, _, facts = _open(name)
    result = _replay(name)
    kernel_lines = [e["line"].removeprefix("livepatch: ") for e in facts["klp_debug_last_retry"]]
    if result is None:
        assert kernel_lines == [] or facts["patches"]
        return
    ours = [f"klp_try_switch_task: {d.message}" for d in result.blocking]
    assert ours == kernel_lines


@pytest.mark.parametrize("name", NAMES)
def test_check_patch_finds_the_tasks_sleeping_on_a_module_function(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """check --patch while patching: the kernel's own "is sleeping on function F" tasks are
    in check's hypothetical transition too, F in a module included, and no patched function
    is called unknown."""
    _, _, state, facts = _open(name)
    if state.transition_patch is None or state.target_state != 1:
        pytest.skip("no patching in progress (unpatching avoids the new functions)")
    patch = state.transition_patch.name
    assert main(["check", str(SAMPLES / name / "vmcore.zst"), "--patch", patch]) == 0
    captured = capsys.readouterr()
    assert "not a symbol of this kernel" not in captured.err
    section = captured.out.split("livepatch transition for ", 1)[1].split("\n\n", 1)[0]
    sleeping = [
        e["line"].removeprefix("livepatch: klp_try_switch_task: ")
        for e in facts["klp_debug_last_retry"]
        if " is sleeping on function " in e["line"]
    ]
    assert sleeping
    for line in sleeping:
        assert f"  {line}\n" in section + "\n"


@pytest.mark.parametrize("name", NAMES)
def test_klp_json_round_trips(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / name / "vmcore.zst")
    assert main(["klp", dump, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["klp", dump]) == 0
    text = capsys.readouterr().out
    from explorer.livepatch.report import render_klp

    assert "\n".join(render_klp(data)) + "\n" == text
    _, _, state, _ = _open(name)
    assert [p["name"] for p in data["patches"]] == [p.name for p in state.patches]
    result = _replay(name)
    if result is None:
        assert data["transition"] is None
        return
    rows = [(r["pid"], r["cause"], r["message"]) for r in data["transition"]["tasks"]]
    assert rows == [
        (
            d.task.pid,
            d.cause,
            f"klp_try_switch_task: {d.message}" if d.blocks else None,
        )
        for d in result.decisions
    ]


def _planted(name: str, folder: Path, edits: list[tuple[int, bytes]]) -> Path:
    """A copy of the sample's dump (ELF) with ``edits`` (virtual address, bytes) written,
    its System.map beside it."""
    import shutil
    import struct

    from parsers.compressed import decompressed_path

    kernel, _, _, _ = _open(name)
    data = bytearray(decompressed_path(SAMPLES / name / "vmcore.zst").read_bytes())
    phoff = struct.unpack_from(">Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from(">HH", data, 0x36)
    loads = []
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from(
            ">IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((p_paddr, p_filesz, p_offset))
    for va, raw in edits:
        pa = kernel.space.translate(va)
        offset = next(o + pa - p for p, size, o in loads if p <= pa < p + size)
        data[offset : offset + len(raw)] = raw
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vmcore").write_bytes(bytes(data))
    shutil.copy(SAMPLES / name / "System.map.zst", folder / "System.map.zst")
    return folder / "vmcore"


def _damage(name: str, how: str) -> list[tuple[int, bytes]]:
    import struct

    kernel, _, state, _ = _open(name)
    assert kernel.symbols is not None and kernel.types is not None
    patch = state.transition_patch or state.patches[0]
    if how == "loop":  # the first patch's list entry points back to itself
        node = patch.address + kernel.types.offset("klp_patch.list")
        return [(node, struct.pack(">Q", node))]
    if how == "text":  # the first function of a loaded object: old_func into the lowcore
        func = next(f for o, f in patch.funcs if o.loaded)
        return [(func.address + kernel.types.offset("klp_func.old_func"), struct.pack(">Q", 0x10))]
    target = kernel.symbols.address_of("klp_target_state")
    assert target is not None
    return [(target, struct.pack(">i", 12345))]


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("loop", "klp_patches: loops back to"),
        ("text", "old_func 0x10 is not kernel text"),
        ("target", "klp_target_state is 12345"),
    ],
)
def test_damaged_copy_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, words: str
) -> None:
    name = NAMES[0]
    dump = _planted(name, tmp_path / how, _damage(name, how))
    code = main(["klp", str(dump)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert "livepatch state damaged" in err and words in err


def test_klp_with_probed_types_refuses_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe infers no klp_* struct: klp says so (exit 2); check still runs."""
    dump = str(SAMPLES / NAMES[0] / "vmcore.zst")
    monkeypatch.setattr("explorer.sources.companions.companion_folders", lambda path: [])
    assert main(["klp", dump, "--types", "probe"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "livepatch state unknown: struct klp_patch is not known from probe" in err
    assert main(["check", dump, "--types", "probe"]) == 0
