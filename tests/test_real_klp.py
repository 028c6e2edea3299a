"""The livepatch samples (samples/real/klp-6.12-*, samples/build_kernel_livepatch.py) against
their own truth.

Debian's 6.12 source rebuilt with LIVEPATCH; before each dump the guest printed its own view
of livepatch (``/sys/kernel/livepatch/*``, every task's ``/proc/PID/patch_state``) and the
kernel's own dynamic-debug lines of ``kernel/livepatch/transition.c`` (``klp_try_switch_task:
COMM:PID is sleeping on function F``), parsed into ``facts.json`` ``livepatch``. These tests
check that the facts agree with each other, with the console they were parsed from, with the
sysrq-t Call Traces and with what backchain reads from the dump (tasks, walks, module frames,
``klp_transition_patch``).
"""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from samples.build_kernel_livepatch import parse_klp
from tests.helpers.real import (
    MOVED,
    SAMPLES,
    check_ps,
    compare_walks,
    kernel_text,
    module_tasks,
    open_sample,
)

KLP_SAMPLES = sorted(p.name for p in SAMPLES.glob("klp-*") if (p / "vmcore.zst").is_file())
RELEASE = "6.12.95-klp"
#: What each sample holds: (patch in transition or None, its enabled value, the task that
#: blocks it (comm), the function it sleeps on, the module of the frame that holds it).
STATE = {
    "klp-6.12-stalled": (
        "test_klp_callbacks_demo",
        1,
        "kworker",
        "busymod_work_func",
        "test_klp_callbacks_busy",
    ),
    "klp-6.12-reversed": ("bcklp_patch", 0, "bcklp_new", "bcklp_sleep_func", "bcklp_patch"),
    "klp-6.12-stacked": (None, None, None, None, None),
}


def klp(name: str) -> dict:
    _, _, facts, _ = open_sample(name)
    return facts["livepatch"]


def test_all_three_samples_are_here() -> None:
    assert sorted(STATE) == KLP_SAMPLES


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_the_kernel_is_the_rebuilt_one(name: str) -> None:
    kernel, _, facts, _ = open_sample(name)
    assert kernel.release == facts["kernel_release"] == RELEASE
    assert len(kernel.cpus) == facts["cpus"] == 2
    assert kernel.types is not None and kernel.types.source == "btf:dump"
    config = (SAMPLES / name / "config.txt").read_text().splitlines()
    assert "CONFIG_LIVEPATCH=y" in config and "CONFIG_HAVE_RELIABLE_STACKTRACE=y" in config


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_facts_are_what_the_console_says(name: str) -> None:
    """facts.json ``livepatch`` is exactly what the parser reads from the bundled console."""
    console = (SAMPLES / name / "console.log").read_text()
    assert klp(name) == parse_klp(console)
    assert "BACKCHAIN-KLP-FAILED" not in console and "BACKCHAIN-KLP-TIMEOUT" not in console
    assert "BACKCHAIN-KLP-DYNDBG 0" not in console


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_ps_matches_the_guest(name: str) -> None:
    check_ps(name)


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_walks_match_the_kernels_own_call_traces(name: str) -> None:
    assert compare_walks(name) >= 55


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_module_frames_are_the_kernels(name: str) -> None:
    """Tasks with a frame in module code: the same return addresses and the same
    ``name+off/size [module]`` text as the kernel's sysrq-t Call Trace."""
    kernel, _, facts, analyses = open_sample(name)
    for trace in facts["sysrq_t"]:
        if trace["pid"] in module_tasks(name) and trace["pid"] not in MOVED[name]:
            a = analyses[trace["pid"]]
            assert [s.ip for s in a.walk.steps] == [int(f["address"], 16) for f in trace["frames"]]
            assert [kernel.symbolize(s.ip) for s in a.walk.steps] == [
                kernel_text(f) for f in trace["frames"]
            ]


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_sysfs_view(name: str) -> None:
    patch, enabled, *_ = STATE[name]
    patches = {p["name"]: p for p in klp(name)["patches"]}
    if patch is None:
        assert list(patches) == ["livepatch_sample", "test_klp_livepatch"]
        assert all(p["enabled"] == 1 and p["transition"] == 0 for p in patches.values())
    else:
        assert list(patches) == [patch]
        assert patches[patch]["enabled"] == enabled and patches[patch]["transition"] == 1
    # force is write-only in 6.12 (the read fails): the guest records it as unknown
    assert all(p["force"] is None for p in patches.values())


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_blocking_task_is_the_kernels(name: str) -> None:
    """The kernel's last retry names one task sleeping on the patched function; that task is
    the only one not yet in the target state, and its walk holds the function."""
    patch, enabled, comm, function, module = STATE[name]
    facts = klp(name)
    states = {s["pid"]: s for s in facts["patch_state"]}
    if patch is None:
        # both transitions completed at their first try: no task ever blocked them
        assert facts["klp_debug_retries"] == 0
        assert facts["kernel_lines"][-1] == "livepatch: 'livepatch_sample': patching complete"
        assert {s["patch_state"] for s in states.values()} == {-1}  # KLP_UNDEFINED
        return
    target = enabled
    (blocked,) = facts["klp_debug_last_retry"]
    assert blocked["cause"] == "sleeping" and blocked["function"] == function
    assert blocked["comm"].startswith(comm)
    assert states[blocked["pid"]]["patch_state"] == 1 - target
    assert {s["patch_state"] for p, s in states.items() if p != blocked["pid"]} <= {target}
    assert facts["klp_debug_retries"] >= 15
    kernel, _, sysrq, analyses = open_sample(name)
    trace = next(t for t in sysrq["sysrq_t"] if t["pid"] == blocked["pid"])
    assert any(
        f["function"] in (function, f"livepatch_{function}") and f.get("module") == module
        for f in trace["frames"]
    )
    names = [kernel.symbolize(s.ip) or "" for s in analyses[blocked["pid"]].walk.steps]
    assert any(n.endswith(f"[{module}]") for n in names)


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_klp_transition_patch_in_memory(name: str) -> None:
    """``klp_transition_patch`` (kallsyms data symbol) is set exactly while sysfs shows a
    transition."""
    kernel, _, _, _ = open_sample(name)
    address = kernel.symbols.address_of("klp_transition_patch")
    assert address is not None
    value = int.from_bytes(kernel.read(address, 8), "big")
    assert (value != 0) == (STATE[name][0] is not None)


def test_signals_were_sent_in_the_stalled_sample() -> None:
    assert "livepatch: signaling remaining tasks" in klp("klp-6.12-stalled")["kernel_lines"]


def test_stacked_patches_both_touch_cmdline_proc_show() -> None:
    facts = klp("klp-6.12-stacked")
    assert facts["cmdline"] == "this has been live patched"  # livepatch_sample's, on top


@pytest.mark.parametrize("name", KLP_SAMPLES)
def test_info_and_check_open_the_sample(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / name / "vmcore.zst")
    assert main(["info", dump, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert RELEASE in json.dumps(doc)
    assert main(["check", dump, "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    _, scan, _, _ = open_sample(name)
    assert len(docs) == len(scan.tasks)
