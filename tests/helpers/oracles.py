"""The independent truths the tests compare against ("oracles"), found in one place.

A test that needs one asks for it here: ``debug_vmlinux(release)``, ``tool("objdump")``,
``libkdumpfile_python()``, ``zgetdump_command()``, ``zstd_command()``, ``chromium()``,
``drgn_module()``, ``python_lzo()``, ``dask_distributed()``, ``makedumpfile()``,
``qemu_elf(...)``, ``qemu_file(...)``; or carries ``@needs("drgn")`` (the ``oracle`` marker,
checked before the test runs). When an oracle is missing, the message says what is missing and
how to get it. With ``CI=true`` that fails the test: ``.ci/run`` provisions every oracle, so a
missing one there is a broken CI, not a reason to pass quietly. Elsewhere (``make test`` on a
fresh clone) it skips.

``not_in_ci(reason)`` is the one exception: what cannot exist in CI at all (README, "Tests and
CI", names each), skipped everywhere it is absent, with that reason. QEMU's raw files of a
fresh boot (``qemu_file``) are such: CI boots no full-system QEMU. QEMU's ELF core of a
bundled sample (``qemu_elf``) is always there: the sample's own ``vmcore.zst``.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

from parsers.cache import cache_dir
from samples.generate_real import QEMU_FILES_SAMPLE

#: CI provisions every oracle (.ci/run): a missing one fails there instead of skipping.
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

REAL_SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "real"
#: The generator's work folder: -dbg vmlinux files, Debian modules, QEMU's raw dumps.
REAL_WORK = cache_dir("real")
ZGETDUMP_SYSROOT = cache_dir("zgetdump", "sysroot")

GET_DEBUG = "sudo python3 samples/generate_real.py --debug-only (what .ci/run does)"
#: Boots full-system QEMU (60-185 s): a developer's machine only, never CI.
GET_QEMU_FILES = "sudo python3 samples/generate_real.py --qemu-files"
GET_MODULES = "sudo python3 samples/generate_real.py --modules-only (what .ci/run does)"
GET_ZGETDUMP = "sudo python3 samples/generate_real.py --zgetdump-sysroot (what .ci/run does)"
APT = {
    "objdump": "binutils-s390x-linux-gnu",
    "readelf": "binutils-s390x-linux-gnu",
    "addr2line": "binutils-s390x-linux-gnu",
    "ld": "binutils-s390x-linux-gnu",
    "nm": "binutils-s390x-linux-gnu",
    "gcc": "gcc-s390x-linux-gnu",
}


def missing(what: str, how: str) -> NoReturn:
    """Fail (CI) or skip (elsewhere) the running test: ``what`` is missing, ``how`` gets it."""
    message = f"{what} is missing; get it with: {how}"
    if IN_CI:
        pytest.fail(f"oracle missing in CI: {message}", pytrace=False)
    pytest.skip(message)


def not_in_ci(reason: str) -> NoReturn:
    """Skip everywhere: what cannot exist in CI (each one named in the README)."""
    pytest.skip(f"not available in CI: {reason}")


def _debian_releases() -> tuple[str, ...]:
    """Kernel releases of the bundled samples made from Debian's binary kernels (those whose
    facts.json names a -dbg package; the rebuilt 5.10 has none)."""
    found = set()
    for path in REAL_SAMPLES.glob("*/facts.json"):
        facts = json.loads(path.read_text())
        if (facts.get("provenance") or {}).get("dbg_package"):
            found.add(str(facts["kernel_release"]))
    return tuple(sorted(found))


#: What ``generate_real.py --debug-only`` fetches: the releases with a -dbg package.
DEBIAN_RELEASES = _debian_releases()


def debug_vmlinux(release: str) -> Path:
    """The -dbg package's vmlinux (DWARF) of a bundled sample's Debian kernel."""
    path = REAL_WORK / "kernels" / release / "vmlinux"
    if path.is_file():
        return path
    if release not in DEBIAN_RELEASES:  # no -dbg package: a kernel the project rebuilt
        script = "build_kernel_livepatch.py" if "klp" in release else "build_kernel_510.py"
        not_in_ci(
            f"the vmlinux of the rebuilt {release} ({path}) comes only from a 10-minute "
            f"kernel build: sudo python3 samples/{script}"
        )
    missing(f"the -dbg vmlinux of {release} ({path})", GET_DEBUG)


def debug_vmlinux_of(sample: str) -> Path:
    """``debug_vmlinux`` of a bundled sample by name (its facts.json names the release)."""
    return debug_vmlinux(sample_release(sample))


def sample_release(sample: str) -> str:
    return str(json.loads((REAL_SAMPLES / sample / "facts.json").read_text())["kernel_release"])


def debian_module(release: str, name: str) -> Path:
    """A module (``.ko``) from the Debian image package of ``release``."""
    path = REAL_WORK / "kernels" / release / "modules" / name
    if not path.is_file():
        missing(f"Debian's {name} of {release} ({path})", GET_MODULES)
    return path


def tool(name: str) -> str:
    """``s390x-linux-gnu-NAME`` (binutils or gcc for s390x), as a path."""
    found = shutil.which(f"s390x-linux-gnu-{name}")
    if found is None:
        missing(f"s390x-linux-gnu-{name}", f"apt-get install {APT[name]}")
    return found


def zstd_command() -> str:
    """The reference zstd decompressor (Debian's ``zstd``), as a path."""
    found = shutil.which("zstd")
    if found is None:
        missing("the zstd command", "apt-get install zstd")
    return found


@cache
def _system_python_with_libkdumpfile() -> str | None:
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        return None
    probe = subprocess.run([python, "-c", "import kdumpfile"], capture_output=True)
    return python if probe.returncode == 0 else None


def libkdumpfile_python() -> str:
    """The system Python that imports libkdumpfile (Debian's python3-libkdumpfile)."""
    python = _system_python_with_libkdumpfile()
    if python is None:
        missing("libkdumpfile for /usr/bin/python3", "apt-get install python3-libkdumpfile")
    return python


def zgetdump_command() -> list[str]:
    """How to run IBM's zgetdump (s390x) here: qemu-user with the unpacked sysroot."""
    qemu = shutil.which("qemu-s390x-static")
    zgetdump = ZGETDUMP_SYSROOT / "sbin" / "zgetdump"
    if qemu is None or not zgetdump.is_file():
        missing(f"qemu-s390x-static and zgetdump under {ZGETDUMP_SYSROOT}", GET_ZGETDUMP)
    return [qemu, "-L", str(ZGETDUMP_SYSROOT), str(zgetdump)]


def chromium() -> str:
    """A Chromium binary (BACKCHAIN_CHROMIUM, else Debian's chromium)."""
    found = os.environ.get("BACKCHAIN_CHROMIUM") or shutil.which("chromium")
    if not found:
        missing("chromium", "apt-get install chromium, or set BACKCHAIN_CHROMIUM")
    return found


def drgn_module() -> ModuleType:
    """drgn (a dev dependency: pip install -e '.[dev]')."""
    try:
        return importlib.import_module("drgn")
    except ImportError:
        missing("drgn", "pip install -e '.[dev]'")


def dask_distributed() -> ModuleType:
    """Dask ``distributed`` with its ``dask`` command (the ``cluster`` extra; a dev
    dependency: pip install -e '.[dev]') for ``check --cluster``."""
    from tests.helpers.dask_cluster import dask_command

    try:
        module = importlib.import_module("distributed")
    except ImportError:
        missing("Dask distributed", "pip install -e '.[dev]'")
    if not os.access(dask_command(), os.X_OK):
        missing(f"the dask command ({dask_command()})", "pip install -e '.[dev]'")
    return module


def python_lzo() -> ModuleType:
    """python-lzo (the optional ``lzo`` extra) for LZO-compressed kdump pages."""
    try:
        return importlib.import_module("lzo")
    except ImportError:
        missing("python-lzo", "apt-get install liblzo2-dev; pip install -e '.[lzo]'")


def makedumpfile() -> str:
    """makedumpfile (Debian's package), for ``-R``: it reassembles a flattened kdump file."""
    found = shutil.which("makedumpfile")
    if found is None:
        missing("makedumpfile", "apt-get install makedumpfile")
    return found


def qemu_elf(sample: str) -> Path:
    """QEMU's own ELF core of a bundled sample, as ``dump-guest-memory`` wrote it (its
    ``vmcore.zst`` is that file, zstd-compressed; samples/README.md): decompressed once into
    the dumps cache (parsers.compressed) and reused. Bundled, so never missing."""
    from parsers.compressed import decompressed_path

    return decompressed_path(REAL_SAMPLES / sample / "vmcore.zst")


def qemu_runs() -> list[str]:
    """Samples whose raw QEMU files are compared: the one ``--qemu-files`` makes (so a missing
    one is said) and any other the generator left in its work folder."""
    found = {p.parent.name for p in REAL_WORK.glob("*/vmcore.elf")} if REAL_WORK.is_dir() else set()
    return sorted(found | {QEMU_FILES_SAMPLE})


def qemu_file(sample: str, name: str) -> Path:
    """A raw file QEMU wrote for ``sample`` (``vmcore.elf``, ``vmcore.kdump-zlib``, ...) in
    the generator's work folder. Only a full-system QEMU boot makes them (QEMU alone writes
    its kdump-compressed files), which CI does not run: absent, the test skips, in CI too."""
    path = REAL_WORK / sample / name
    if not os.access(path, os.R_OK):
        not_in_ci(f"QEMU's own {name} of {sample} ({path}) needs a QEMU boot: {GET_QEMU_FILES}")
    return path


#: name -> check, for ``@needs(NAME)``.
CHECKS: dict[str, Callable[[], object]] = {
    "drgn": drgn_module,
    "distributed": dask_distributed,
    "libkdumpfile": libkdumpfile_python,
    "zgetdump": zgetdump_command,
    "chromium": chromium,
    "makedumpfile": makedumpfile,
    **{name: partial(tool, name) for name in APT},
}


def needs(*names: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as ``pytestmark``) as needing these oracles."""
    unknown = set(names) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown oracles {sorted(unknown)}; known: {sorted(CHECKS)}")
    return pytest.mark.oracle(*names)


def check_marks(item: pytest.Item) -> None:
    """Run the checks of every ``oracle`` mark of ``item`` (conftest's setup hook)."""
    for mark in item.iter_markers("oracle"):
        for name in mark.args:
            CHECKS[name]()
