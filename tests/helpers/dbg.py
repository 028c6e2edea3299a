"""The bundled samples opened with their kernel's debug vmlinux (a Debian -dbg package's, or
a rebuilt kernel's): by backchain, and by drgn (the independent truth) over the copy
samples/drgn_copy.py writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.helpers import oracles

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel

REAL = oracles.REAL_SAMPLES
#: Samples whose facts.json names a Debian -dbg package (the rebuilt kernels have none).
DEBIAN_SAMPLES = sorted(
    p.name
    for p in REAL.iterdir()
    if (p / "facts.json").is_file()
    and (json.loads((p / "facts.json").read_text()).get("provenance") or {}).get("dbg_package")
)


def open_sample(sample: str, system_map: bool = False) -> Kernel:
    """backchain's kernel of ``sample`` with its debug vmlinux (and, asked, the sample's
    System.map)."""
    from explorer.model.kernel import Options
    from explorer.model.opening import open_kernel

    folder = REAL / sample
    vmlinux = oracles.debug_vmlinux(oracles.sample_release(sample))
    options = Options(
        vmlinux=str(vmlinux),
        system_map=str(folder / "System.map.zst") if system_map else None,
    )
    return open_kernel(str(folder / "vmcore.zst"), options)


def drgn_program(sample: str, tmp_path: Path) -> Any:
    """drgn's program of ``sample`` with its debug vmlinux (a drgn-readable copy in
    ``tmp_path``, unlinked once drgn holds it open: 128 MiB each, the disk gets it back at
    the end)."""
    import drgn

    from samples.drgn_copy import fix_for_drgn

    vmlinux = oracles.debug_vmlinux(oracles.sample_release(sample))  # skips before the copy
    copy = tmp_path / "vmcore.elf"
    fix_for_drgn(REAL / sample / "vmcore.zst", copy)
    prog = drgn.Program()
    prog.set_core_dump(str(copy))
    prog.load_debug_info([str(vmlinux)])
    copy.unlink()
    return prog
