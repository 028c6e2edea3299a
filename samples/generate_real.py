#!/usr/bin/env python3
"""Generate real s390x (IBM Z) Linux memory dumps under QEMU emulation.

The dumps are made from unmodified Debian s390x kernels booted with
``qemu-system-s390x`` (TCG) and a busybox initramfs that starts a known
workload, prints the truth (ps table, /proc/<pid>/stat, and the kernel's own
``sysrq-t`` Call Traces) to the console and then signals readiness.  The
generator then stops the guest through QMP and has QEMU write the guest memory
as an ELF core (and as a flattened kdump-zlib file).

Everything runs on a Debian (12) x86_64 host as root and uses only the Python
standard library plus Debian packages:

  * host packages: qemu-system-misc, zstd, cpio, xz-utils, makedumpfile
  * s390x packages (``apt-get download``, never installed): the kernel image,
    its ``-dbg`` package (real System.map and vmlinux with DWARF) and
    busybox-static.  The 6.12 kernel comes from bookworm-backports, which is
    read through a private apt configuration; /etc/apt is never changed apart
    from ``dpkg --add-architecture s390x``.

Outputs per sample ``<name>``:
  <out>/<name>/vmcore.zst      ELF core (zstd -19 --long)
  <out>/<name>/System.map.zst  the real System.map from the -dbg package
  <out>/<name>/config.txt      kernel config lines that matter for unwinding
  <out>/<name>/console.log     the guest console (truth for the tests)
  <out>/<name>/facts.json      facts parsed from console.log + provenance
  <scratch>/<name>/vmcore.elf  the uncompressed ELF core (not committed)
  <scratch>/<name>/vmcore.kdump-zlib[.flat]  kdump-compressed variants
  <scratch>/kernels/<release>/{vmlinuz,config,System.map,vmlinux}

Big guests (``--big``, ``--memory 16G``; not bundled), per sample and size:
  <scratch>/big/<name>-<size>/{vmcore.kdump-zlib,vmcore.elf (sparse),console.log,facts.json}

Run ``generate_real.py --help`` for options and ``--list`` for the samples.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import glob
import gzip
import io
import json
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR.parent))

from parsers.cache import cache_dir  # noqa: E402  (stdlib only; the script runs without a venv)

DEFAULT_OUT = SCRIPT_DIR / "real"
#: Big work files (debs, kernels, -dbg vmlinux, raw dumps): ``$BACKCHAIN_CACHE/real``.
DEFAULT_SCRATCH = cache_dir("real")

HOST_PACKAGES = {
    # package: a file that proves it is installed
    "qemu-system-misc": "qemu-system-s390x",
    "zstd": "zstd",
    "cpio": "cpio",
    "xz-utils": "xz",
    "makedumpfile": "makedumpfile",
}

READY_MARKER = "BACKCHAIN-READY"

CONFIG_PATTERN = re.compile(
    r"^(?:# )?CONFIG_(?:\w*PREEMPT\w*|VMAP_STACK|RANDOMIZE_BASE|"
    r"FUNCTION_GRAPH_TRACER|KPROBES\w*|DEBUG_INFO_BTF\w*|THREAD_SIZE\w*|"
    r"KASAN\w*|HZ\w*|NR_CPUS|FRAME_POINTER|UNWINDER\w*|STACKPROTECTOR\w*|"
    r"EXPOLINE\w*|LIVEPATCH|HAVE_RELIABLE_STACKTRACE|SMP|64BIT|"
    r"KERNEL_NOBP|PRINTK_TIME|LOG_BUF_SHIFT)(?:=| is not set)"
)


# --------------------------------------------------------------------------
# Kernels and samples
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """A Debian s390x kernel to fetch.

    ``name_regex`` matches binary package names of the kernel image (without
    the -dbg suffix); the newest matching package that also has a -dbg
    package is used unless ``--package-<key>`` pins one.
    """

    key: str
    suite: str  # "bookworm", "bookworm-backports", "bullseye", "sid"
    name_regex: str
    description: str
    #: Debian's newer packaging (sid, 7.x): ``linux-image-KV`` is an empty meta package; the
    #: image is in ``linux-binary-KV``, the config in ``linux-base-KV``, the modules in
    #: ``linux-modules-KV`` (all under /usr/lib/modules/KV/), and the -dbg package keeps
    #: vmlinux and System.map under /usr/lib/debug/lib/modules/KV/.
    split: bool = False

    def image_members(self, release: str) -> dict[str, dict[str, str]]:
        """Package name -> {tar path: file name in the kernel folder} of vmlinuz and config."""
        if self.split:
            mod = f"./usr/lib/modules/{release}"
            return {
                f"linux-binary-{release}": {f"{mod}/vmlinuz": "vmlinuz"},
                f"linux-base-{release}": {f"{mod}/config": "config"},
            }
        return {
            f"linux-image-{release}": {
                f"./boot/vmlinuz-{release}": "vmlinuz",
                f"./boot/config-{release}": "config",
            }
        }

    def modules_package(self, release: str) -> tuple[str, str]:
        """(package, folder in its data tarball) of the kernel's modules."""
        if self.split:
            return f"linux-modules-{release}", f"./usr/lib/modules/{release}/kernel/"
        return f"linux-image-{release}", f"./lib/modules/{release}/kernel/"


def debug_members(release: str) -> dict[str, list[str]]:
    """File name in the kernel folder -> the -dbg package's tar paths that may hold it (the
    package hard-links vmlinux under several names; the first one in the tarball has the
    data)."""
    return {
        "System.map": [
            f"./usr/lib/debug/boot/System.map-{release}",
            f"./usr/lib/debug/lib/modules/{release}/System.map",
        ],
        "vmlinux": [
            f"./usr/lib/debug/boot/vmlinux-{release}",
            f"./usr/lib/debug/lib/modules/{release}/vmlinux",
            f"./usr/lib/debug/vmlinux-{release}",
        ],
    }


KERNELS = {
    "6.1": KernelSpec(
        "6.1", "bookworm", r"linux-image-6\.1\.0-\d+-s390x", "Debian 12 (bookworm) 6.1 kernel"
    ),
    "6.12": KernelSpec(
        "6.12",
        "bookworm-backports",
        r"linux-image-6\.12\.\d+\+deb12-s390x",
        "Debian 12 backports 6.12 kernel",
    ),
    "5.10": KernelSpec(
        "5.10", "bullseye", r"linux-image-5\.10\.0-\d+-s390x", "Debian 11 (bullseye) 5.10 kernel"
    ),
    "7.x": KernelSpec(
        "7.x",
        "sid",
        r"linux-image-7\.\d+\.\d+\+deb\d+-s390x",
        "Debian sid (unstable) 7.x kernel",
        split=True,
    ),
}


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    name: str
    kernel: str  # key into KERNELS
    mode: str  # idle | busy | panic | nmi (see INIT_SCRIPT)
    mem_mib: int
    smp: int
    description: str
    #: Modules to load in the guest (with their dependencies) before the workload; with
    #: ``disk_mib`` an ext4 disk of that size is attached (virtio-blk) and mounted on /mnt, so
    #: ``jbd2/vda-8`` sleeps in ``kjournald2 [jbd2]``.
    modules: tuple[str, ...] = ()
    disk_mib: int = 0
    #: A big guest (``--memory``): not bundled, kept in ``cache_dir("real", "big", NAME)``;
    #: no ``init_on_free`` (it would make the guest write, and the host allocate, every page)
    #: and the ELF core written sparse (zero blocks as holes) through a FIFO.
    big: bool = False


SAMPLES = {
    s.name: s
    for s in [
        SampleSpec(
            "deb12-6.1-idle",
            "6.1",
            "idle",
            128,
            2,
            "6.1, blocked/stopped/zombie tasks, no CPU hogs: CPUs idle",
        ),
        SampleSpec(
            "deb12-6.1-busy",
            "6.1",
            "busy",
            128,
            2,
            "6.1, full workload incl. user-mode loop and kernel-mode dd",
        ),
        SampleSpec(
            "bpo12-6.12-busy",
            "6.12",
            "busy",
            128,
            2,
            "6.12, full workload incl. user-mode loop and kernel-mode dd",
        ),
        SampleSpec(
            "bpo12-6.12-panic",
            "6.12",
            "panic",
            128,
            2,
            "6.12, busy workload then 'echo c > /proc/sysrq-trigger'; "
            "dumped while paused in the panic (disabled wait)",
        ),
        SampleSpec(
            "bpo12-6.12-nmi",
            "6.12",
            "nmi",
            128,
            2,
            "6.12, busy workload then QMP inject-nmi (s390 restart "
            "interrupt); dumped after the restart handler stopped",
        ),
        SampleSpec(
            "deb12-6.1-panic", "6.1", "panic", 128, 2, "6.1, busy workload then sysrq-c panic"
        ),
        SampleSpec("deb11-5.10-busy", "5.10", "busy", 128, 2, "5.10 (Debian 11), full workload"),
        SampleSpec(
            "deb12-6.1-modules",
            "6.1",
            "busy",
            128,
            2,
            "6.1, full workload plus an ext4 disk mounted from modules "
            "(virtio_blk, crc32c_generic, ext4, jbd2, mbcache, crc16): jbd2/vda-8 sleeps in "
            "kjournald2 [jbd2]",
            # 6.1's ext4 needs the crc32c shash and cannot modprobe it in this initramfs.
            modules=("virtio_blk", "crc32c_generic", "ext4"),
            disk_mib=16,
        ),
        SampleSpec(
            "sid-7.2-modules",
            "7.x",
            "busy",
            128,
            2,
            "7.x (Debian sid), full workload plus an ext4 disk mounted from modules "
            "(virtio_blk, ext4, jbd2, mbcache, crc16): jbd2/vda-8 sleeps in kjournald2 [jbd2]",
            modules=("virtio_blk", "ext4"),
            disk_mib=16,
        ),
    ]
}
DEFAULT_SAMPLES = ["deb12-6.1-idle", "bpo12-6.12-busy", "bpo12-6.12-panic"]


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


class Timer:
    """Collects wall-clock durations of named steps."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    def run(self, name: str, func, *args, **kwargs):
        log(f"[{name}] ...")
        t0 = time.monotonic()
        result = func(*args, **kwargs)
        dt = time.monotonic() - t0
        self.steps[name] = round(self.steps.get(name, 0.0) + dt, 1)
        log(f"[{name}] done in {dt:.1f} s")
        return result


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    log("  $ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kwargs)


def output(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# --------------------------------------------------------------------------
# Host setup and apt
# --------------------------------------------------------------------------


def ensure_host_packages() -> None:
    missing = [p for p, exe in HOST_PACKAGES.items() if not shutil.which(exe)]
    if missing:
        run(["apt-get", "update"])
        run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def ensure_s390x_arch() -> None:
    foreign = output(["dpkg", "--print-foreign-architectures"]).split()
    if "s390x" not in foreign:
        run(["dpkg", "--add-architecture", "s390x"])
    run(["apt-get", "update"], stdout=subprocess.DEVNULL)


def debian_mirror() -> tuple[str, str | None]:
    """Return (URI, signed-by keyring) of the Debian archive the host's apt
    sources already use (the entry that carries a plain release suite, not
    the security archive)."""
    entries: list[tuple[str, list[str], str | None]] = []
    files = ["/etc/apt/sources.list"]
    files += sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    deb822 = sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in files:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            m = re.match(
                r"deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+"
                r"(?P<suite>\S+)",
                line,
            )
            if m:
                opts = m.group("opts") or ""
                so = re.search(r"signed-by=(\S+)", opts)
                entries.append((m.group("uri"), [m.group("suite")], so.group(1) if so else None))
    for path in deb822:
        for stanza in re.split(r"\n\s*\n", Path(path).read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split(), fields.get("signed-by")))
    for uri, suites, key in entries:
        if "security" in uri:
            continue
        if any(re.fullmatch(r"(bookworm|bullseye|trixie|stable)", s) for s in suites):
            return uri.rstrip("/"), key
    raise SystemExit("no Debian archive found in /etc/apt sources")


class PrivateApt:
    """apt reading one extra suite (e.g. bookworm-backports) through a
    private configuration under the scratch directory; /etc/apt is left
    alone."""

    def __init__(self, root: Path, suite: str) -> None:
        self.root = root / f"apt-{suite}"
        uri, key = debian_mirror()
        keyring = key or "/usr/share/keyrings/debian-archive-keyring.gpg"
        if suite == "bullseye":
            keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        self.sources = self.root / "sources.list"
        self.sources.write_text(f"deb [signed-by={keyring}] {uri} {suite} main\n")
        self.opts = [
            "-o",
            f"Dir::Etc::SourceList={self.sources}",
            "-o",
            "Dir::Etc::SourceParts=/nonexistent",
            "-o",
            f"Dir::State::Lists={self.root / 'lists'}",
            "-o",
            f"Dir::Cache={self.root / 'cache'}",
            "-o",
            "APT::Architectures::=s390x",
            "-o",
            "APT::Sandbox::User=root",
        ]
        self.updated = False

    def update(self) -> None:
        if not self.updated:
            run(["apt-get", *self.opts, "update"], stdout=subprocess.DEVNULL)
            self.updated = True
            self.check_architecture()

    def check_architecture(self) -> None:
        """Fail clearly when the suite no longer carries s390x (bullseye
        became LTS without s390x and its s390x packages left the mirror)."""
        for release in (self.root / "lists").glob("*_InRelease"):
            m = re.search(r"^Architectures: (.*)$", release.read_text(errors="replace"), re.M)
            if m and "s390x" not in m.group(1).split():
                raise SystemExit(
                    f"{release.name}: the suite has no s390x packages on this mirror "
                    f"(Architectures: {m.group(1).strip()})"
                )

    def cache(self, *args: str) -> str:
        return output(["apt-cache", *self.opts, *args])

    def download(self, dest: Path, *pkgs: str) -> None:
        run(["apt-get", *self.opts, "download", *pkgs], cwd=dest, stdout=subprocess.DEVNULL)


class SystemApt:
    """The host's own apt configuration (bookworm + s390x architecture)."""

    opts = ["-o", "APT::Sandbox::User=root"]

    def update(self) -> None:
        pass

    def cache(self, *args: str) -> str:
        return output(["apt-cache", *args])

    def download(self, dest: Path, *pkgs: str) -> None:
        run(
            ["apt-get", *self.opts, "download", *[arch_qualified(p) for p in pkgs]],
            cwd=dest,
            stdout=subprocess.DEVNULL,
        )


def arch_qualified(pkg: str) -> str:
    """``name[=version]`` -> ``name:s390x[=version]`` (an explicit ``:arch`` is kept)."""
    name, eq, version = pkg.partition("=")
    return (name if ":" in name else name + ":s390x") + eq + version


def available_versions(apt, pkg: str) -> list[str]:
    """Every version of ``pkg`` the mirror offers (newest first as apt lists them)."""
    try:
        text = apt.cache("show", arch_qualified(pkg) if isinstance(apt, SystemApt) else pkg)
    except subprocess.CalledProcessError:
        return []
    return re.findall(r"^Version: (\S+)", text, re.M)


def version_key(name: str) -> list:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def pick_kernel_package(apt, spec: KernelSpec, pinned: str | None) -> str:
    if pinned:
        return pinned
    names = set(apt.cache("pkgnames", "linux-image-").split())
    names = {n.split(":")[0] for n in names}
    candidates = [n for n in names if re.fullmatch(spec.name_regex, n) and n + "-dbg" in names]
    if not candidates:
        raise SystemExit(f"no package matching {spec.name_regex} (with -dbg) in {spec.suite}")
    return max(candidates, key=version_key)


def package_version(apt, pkg: str) -> str:
    text = apt.cache(
        "show", "--no-all-versions", pkg + ":s390x" if isinstance(apt, SystemApt) else pkg
    )
    m = re.search(r"^Version: (\S+)", text, re.M)
    return m.group(1) if m else "?"


# --------------------------------------------------------------------------
# Fetch and extract kernels
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Kernel:
    release: str
    package: str
    version: str
    dir: Path

    @property
    def vmlinuz(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def config(self) -> Path:
        return self.dir / "config"


def extract_members(deb: Path, wanted: dict[str, Path]) -> None:
    """Stream the data tarball of ``deb`` and write only the members named
    in ``wanted`` (tar path -> destination; several tar paths may name the
    same destination: the first regular file found wins); stops once every
    destination is written."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    left = dict(wanted)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                dest = left.get(member.name)
                if dest is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                tmp = dest.with_suffix(dest.suffix + ".part")
                with open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                tmp.rename(dest)
                left = {k: v for k, v in left.items() if v != dest}
                if not left:
                    break
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    if left:
        raise SystemExit(f"{deb.name}: missing {sorted(left)}")


_APTS: dict[tuple[str, Path], object] = {}


def apt_for(spec: KernelSpec, scratch: Path):
    """One apt per suite and run (the private ones are updated once)."""
    key = (spec.suite, scratch)
    if key not in _APTS:
        apt = SystemApt() if spec.suite == "bookworm" else PrivateApt(scratch, spec.suite)
        apt.update()
        _APTS[key] = apt
    return _APTS[key]


def download_one(apt, debs: Path, pkg: str, version: str | None, timer: Timer) -> Path:
    """The .deb of ``pkg`` (at ``version`` if given) in ``debs``, downloaded if missing."""
    debs.mkdir(parents=True, exist_ok=True)
    pattern = f"{pkg}_{version.replace(':', '%3a') if version else '*'}_s390x.deb"
    found = sorted(debs.glob(pattern))
    if not found:
        timer.run(f"download {pkg}", apt.download, debs, f"{pkg}={version}" if version else pkg)
        found = sorted(debs.glob(pattern))
    if not found:
        raise SystemExit(f"{pkg}: apt-get download wrote no {pattern} in {debs}")
    return found[-1]


def fetch_debug(
    apt, release: str, package: str, version: str, kdir: Path, scratch: Path, timer: Timer
) -> None:
    """Extract vmlinux (DWARF) and the real System.map of ``release`` from its -dbg package
    into ``kdir``; the (big) .deb is removed afterwards."""
    if (kdir / "vmlinux").exists() and (kdir / "System.map").exists():
        log(f"-dbg files of {release} already in {kdir}")
        return
    deb = download_one(apt, scratch / "debs", package + "-dbg", version, timer)
    kdir.mkdir(parents=True, exist_ok=True)
    wanted = {path: kdir / name for name, paths in debug_members(release).items() for path in paths}
    timer.run(f"extract {deb.name}", extract_members, deb, wanted)
    (kdir / "dbg-package").write_text(f"{package}-dbg {version}\n")
    deb.unlink()


def fetch_kernel(spec: KernelSpec, scratch: Path, pinned: str | None, timer: Timer) -> Kernel:
    apt = apt_for(spec, scratch)
    pkg = pick_kernel_package(apt, spec, pinned)
    release = pkg.removeprefix("linux-image-")
    version = package_version(apt, pkg)
    kdir = scratch / "kernels" / release
    kernel = Kernel(release, pkg, version, kdir)
    files = [kernel.vmlinuz, kernel.config, kernel.system_map, kernel.vmlinux]
    if all(f.exists() for f in files):
        log(f"kernel {release} ({version}) already extracted in {kdir}")
        return kernel
    kdir.mkdir(parents=True, exist_ok=True)
    for image_pkg, members in spec.image_members(release).items():
        deb = download_one(apt, scratch / "debs", image_pkg, version, timer)
        wanted = {path: kdir / name for path, name in members.items()}
        timer.run(f"extract {image_pkg}", extract_members, deb, wanted)
    fetch_debug(apt, release, pkg, version, kdir, scratch, timer)
    return kernel


def fetch_modules(
    spec: KernelSpec, kernel: Kernel, scratch: Path, names: tuple[str, ...], timer: Timer
) -> list[tuple[str, bytes]]:
    """The modules ``names`` and everything they depend on, in load order, as (name, bytes)
    (``.ko.xz`` decompressed), read from the kernel's modules package.  Dependencies come from
    each module's own ``.modinfo`` ``depends=`` (what depmod writes to modules.dep)."""
    import lzma

    apt = apt_for(spec, scratch)
    pkg, folder = spec.modules_package(kernel.release)
    deb = download_one(apt, scratch / "debs", pkg, kernel.version, timer)
    mdir = kernel.dir / "modules"
    if not mdir.is_dir():  # unpacked beside it, renamed when whole: a folder there is complete
        part = kernel.dir / "modules.part"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    if not (member.isfile() and member.name.startswith(folder)):
                        continue
                    base = member.name.rsplit("/", 1)[1]
                    data = tar.extractfile(member).read()
                    if base.endswith(".xz"):
                        data, base = lzma.decompress(data), base[:-3]
                    if base.endswith(".ko"):
                        (part / base.replace("-", "_")).write_bytes(data)
        finally:
            proc.stdout.close()
            if proc.wait() != 0:
                raise SystemExit(f"dpkg-deb --fsys-tarfile {deb} failed")
        part.rename(mdir)
    order: list[str] = []

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in order or not name:
            return
        path = mdir / f"{name}.ko"
        if not path.exists():
            raise SystemExit(f"module {name} not in {pkg}")
        m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", path.read_bytes())
        for dep in m.group(1).decode().split(",") if m else []:
            visit(dep)
        order.append(name)

    for name in names:
        visit(name)
    return [(name, (mdir / f"{name}.ko").read_bytes()) for name in order]


def fetch_busybox(scratch: Path) -> tuple[Path, str]:
    apt = SystemApt()
    debs = scratch / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not glob.glob(str(debs / "busybox-static_*_s390x.deb")):
        apt.download(debs, "busybox-static")
    deb = Path(glob.glob(str(debs / "busybox-static_*_s390x.deb"))[0])
    dest = scratch / "busybox-s390x"
    if not dest.exists():
        extract_members(deb, {"./bin/busybox": dest})
    version = deb.name.split("_")[1].replace("%3a", ":")
    return dest, version


def bundled_kernels(out: Path) -> dict[str, tuple[str, str]]:
    """Release -> (image package, version) of every bundled sample made from a Debian binary
    kernel (facts.json provenance); rebuilt kernels have no -dbg package and are left out."""
    found: dict[str, tuple[str, str]] = {}
    for facts_path in sorted(out.glob("*/facts.json")):
        facts = json.loads(facts_path.read_text())
        dbg = (facts.get("provenance") or {}).get("dbg_package")
        if not dbg:
            continue
        package, version = dbg.split()
        found[facts["kernel_release"]] = (package.removesuffix("-dbg"), version)
    return found


def fetch_bundled_debug(out: Path, scratch: Path, timer: Timer) -> list[str]:
    """Fetch the -dbg vmlinux and System.map of every bundled sample's kernel into
    ``scratch/kernels/RELEASE/``; returns one line per release saying what happened. (One after
    the other: side by side measured no faster on 2 cores, the sid one being a 2-4 minute
    single-threaded xz stream whatever runs beside it.)"""
    return [fetch_bundled_one(*k, scratch, timer) for k in bundled_kernels(out).items()]


def fetch_bundled_one(
    release: str, package_version: tuple[str, str], scratch: Path, timer: Timer
) -> str:
    """fetch_bundled_debug for one release."""
    package, version = package_version
    spec = next((k for k in KERNELS.values() if re.fullmatch(k.name_regex, package)), None)
    if spec is None:
        return f"{release}: no known suite for {package}; skipped"
    kdir = scratch / "kernels" / release
    if (kdir / "vmlinux").exists() and (kdir / "System.map").exists():
        return f"{release}: already in {kdir} (nothing downloaded)"  # no apt: no mirror asked
    apt = apt_for(spec, scratch)
    versions = available_versions(apt, package + "-dbg")
    if version not in versions:
        return (
            f"{release}: {package}-dbg {version} is no longer on the mirror "
            f"({spec.suite} has: {', '.join(versions) or 'none'}); skipped"
        )
    fetch_debug(apt, release, package, version, kdir, scratch, timer)
    size = (kdir / "vmlinux").stat().st_size
    return f"{release}: {package}-dbg {version}: {kdir}/vmlinux ({size} bytes)"


#: The sample whose raw QEMU files tests/test_formats.py and tests/test_zgetdump.py compare
#: (``--qemu-files``): the smallest kernel, no modules. Its kernel's Debian modules are what
#: ``--modules-only`` unpacks (tests/test_code_audit.py), with no boot.
QEMU_FILES_SAMPLE = "deb12-6.1-idle"
QEMU_FILES = ("vmcore.elf", "vmcore.kdump-zlib.flat", "vmcore.kdump-zlib")


def fetch_sample_modules(out: Path, scratch: Path, timer: Timer) -> Path:
    """Unpack every module of QEMU_FILES_SAMPLE's kernel (the bundled sample's exact image
    package, from facts.json) into ``scratch/kernels/RELEASE/modules/``; no boot, no -dbg
    package. Nothing is downloaded (no apt call) when that folder is there."""
    release = json.loads((out / QEMU_FILES_SAMPLE / "facts.json").read_text())["kernel_release"]
    package, version = bundled_kernels(out)[release]
    kernel = Kernel(release, package, version, scratch / "kernels" / release)
    modules = kernel.dir / "modules"
    if modules.is_dir():
        log(f"modules of {release} already in {modules} (nothing downloaded)")
        return modules
    spec = KERNELS[SAMPLES[QEMU_FILES_SAMPLE].kernel]
    timer.run(f"modules of {release}", fetch_modules, spec, kernel, scratch, (), timer)
    return modules


def make_qemu_files(out: Path, scratch: Path, timer: Timer, boot_timeout: float) -> Path:
    """Boot QEMU_FILES_SAMPLE's kernel (the bundled sample's package) and keep QEMU's own raw
    dumps (ELF, flattened kdump-zlib, makedumpfile -R's reassembly) in ``scratch/NAME/`` and
    the kernel's Debian modules in ``scratch/kernels/RELEASE/modules/``, without packaging a
    bundle. Nothing is fetched or booted when they are already there. (Not in CI: only a
    developer's machine boots QEMU; CI takes the modules alone, ``--modules-only``.)"""
    name = QEMU_FILES_SAMPLE
    sample = SAMPLES[name]
    work = scratch / name
    fetch_sample_modules(out, scratch, timer)
    if all((work / f).is_file() for f in QEMU_FILES):
        log(f"QEMU files of {name} already in {work} (nothing booted)")
        return work
    release = json.loads((out / name / "facts.json").read_text())["kernel_release"]
    spec = KERNELS[sample.kernel]
    package, _ = bundled_kernels(out)[release]
    busybox, _ = timer.run("busybox", fetch_busybox, scratch)
    initrd = scratch / "initrd.cpio.gz"
    build_initramfs(busybox, initrd)
    kernel = fetch_kernel(spec, scratch, package, timer)
    work.mkdir(parents=True, exist_ok=True)
    timer.run(
        f"{name}: boot+dump", boot_and_dump, kernel, initrd, sample, work, timer, boot_timeout
    )
    return work


#: What tests/test_zgetdump.py runs IBM's zgetdump with: s390x packages unpacked into one
#: sysroot, run by qemu-s390x-static -L SYSROOT.
ZGETDUMP_PACKAGES = ("s390-tools", "libc6", "zlib1g", "libfuse2", "libgcc-s1")


def make_zgetdump_sysroot(dest: Path) -> Path:
    """Unpack the s390x zgetdump and its libraries into ``dest`` (default
    ``cache_dir("zgetdump", "sysroot")``); installs qemu-user-static on the host. A sysroot
    that already has zgetdump is kept as it is (nothing downloaded)."""
    zgetdump, done = dest / "sbin" / "zgetdump", dest / ".unpacked"
    if done.is_file() and shutil.which("qemu-s390x-static"):
        log(f"zgetdump sysroot already in {dest} (nothing downloaded)")
        return zgetdump
    if not shutil.which("qemu-s390x-static"):
        run(
            ["apt-get", "install", "-y", "--no-install-recommends", "qemu-user-static"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    debs = dest.parent / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    SystemApt().download(debs, *ZGETDUMP_PACKAGES)
    dest.mkdir(parents=True, exist_ok=True)
    for deb in sorted(debs.glob("*_s390x.deb")):
        run(["dpkg-deb", "-x", str(deb), str(dest)])
    for deb in debs.glob("*_s390x.deb"):
        deb.unlink()  # unpacked: the sysroot is what is kept
    done.write_text(" ".join(ZGETDUMP_PACKAGES) + "\n")
    return zgetdump


# --------------------------------------------------------------------------
# Initramfs
# --------------------------------------------------------------------------

# The guest's /init.  BCMODE comes from the kernel command line (an unknown
# "bcmode=..." parameter becomes an environment variable of init).
INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mode=${bcmode:-busy}
echo "BACKCHAIN-MODE $mode"

# --- modules and an ext4 disk (samples with modules) ------------------------
if [ -f /bcmodules ]; then
    for m in $(cat /bcmodules); do
        insmod /lib/bcmodules/$m.ko || echo "BACKCHAIN-INSMOD-FAILED $m"
        rm /lib/bcmodules/$m.ko                 # free (and zero) the file's pages
    done
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 1; done
    mkdir -p /mnt
    if mount -t ext4 /dev/vda /mnt; then
        # Nothing is written: 7.2.13 under QEMU TCG oopses in ext4_mb_new_blocks (a per-CPU
        # access in module code) on the first block allocation, and sync then hangs.
        echo "BACKCHAIN-MOUNTED $(grep ' /mnt ' /proc/mounts)"
    fi
fi

# --- workload -----------------------------------------------------------
sleep 100001 &                          # nanosleep
sleep 100002 &
sleep 100003 &
mkfifo /tmp/fifo
cat /tmp/fifo &                         # blocked opening a FIFO, no writer
sleep 100004 | cat &                    # cat blocked reading an empty pipe
sh -c 'sleep 100005 & wait' &           # a shell in wait
sleep 100006 &                          # will be SIGSTOPped
stopped=$!
sh -c 'sleep 1 & exec sleep 100007' &   # the 'sleep 1' child stays a zombie
sleep 1                                 # let the exec finish (comm)
kill -STOP $stopped
if [ "$mode" != idle ]; then
    sh -c 'while :; do :; done' &                  # user-mode CPU
    dd if=/dev/zero of=/dev/null bs=64k 2>/dev/null &   # kernel-mode CPU
fi
sleep 3

# --- a scenario of its own (build_kernel_livepatch.py) ----------------------
# /bcscenario, when present, runs here and defines bc_scenario_truth, which prints the
# scenario's own view just before the sysrq-t traces.
if [ -f /bcscenario ]; then . /bcscenario; fi

# --- truth --------------------------------------------------------------
echo "BACKCHAIN-UNAME $(uname -r)"
echo "BACKCHAIN-NCPUS $(grep -c '^processor ' /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online)"
echo "BACKCHAIN-MEMINFO $(grep MemTotal /proc/meminfo)"
echo "BACKCHAIN-CMDLINE $(cat /proc/cmdline)"
echo "BACKCHAIN-PS-BEGIN"
ps -o pid,ppid,stat,comm
echo "BACKCHAIN-PS-END"
echo "BACKCHAIN-MODULES-BEGIN"
cat /proc/modules
echo "BACKCHAIN-MODULES-END"
echo "BACKCHAIN-STAT-BEGIN"
for f in /proc/[0-9]*/task/[0-9]*/stat; do
    read -r l < "$f" || continue
    rest=${l##*) }
    set -- $rest
    echo "BCSTAT ${l%) *}) $1 $2"
done
echo "BACKCHAIN-STAT-END"
if [ -f /bcscenario ]; then bc_scenario_truth; fi
echo "BACKCHAIN-SYSRQ-T-BEGIN"
echo t > /proc/sysrq-trigger
sleep 2
echo "BACKCHAIN-SYSRQ-T-END"
echo "BACKCHAIN-INIT-PID $$"
echo "BACKCHAIN-READY"
if [ "$mode" = panic ]; then
    sleep 1
    echo c > /proc/sysrq-trigger
fi
while :; do sleep 100000; done
"""


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """Build a cpio 'newc' archive; entries are (path, mode, data|target)."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * ((4 - n % 4) % 4))

    ino = 1
    for path, mode, data, *dev in [*entries, ("TRAILER!!!", 0, b"")]:
        rmaj, rmin = dev[0] if dev else (0, 0)
        name = path.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name), 0)
        )
        out.write(hdr.encode() + name)
        pad(110 + len(name))
        out.write(data)
        pad(len(data))
        ino += 1
    return out.getvalue()


def build_initramfs(
    busybox: Path,
    dest: Path,
    modules: list[tuple[str, bytes]] | None = None,
    extra: tuple[tuple[str, int, bytes], ...] = (),
) -> None:
    """Write the initramfs; ``modules`` (name, .ko bytes) in load order go to
    /lib/bcmodules and their names to /bcmodules, which /init loads with insmod.
    ``extra`` entries (path, mode, data) are added as they are (e.g. /bcscenario)."""
    d = stat.S_IFDIR | 0o755
    entries = [
        ("bin", d, b""),
        ("sbin", d, b""),
        ("usr", d, b""),
        ("usr/bin", d, b""),
        ("usr/sbin", d, b""),
        ("proc", d, b""),
        ("sys", d, b""),
        ("dev", d, b""),
        ("tmp", stat.S_IFDIR | 0o1777, b""),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
        ("dev/null", stat.S_IFCHR | 0o666, b"", (1, 3)),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
        ("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        ("init", stat.S_IFREG | 0o755, INIT_SCRIPT.encode()),
    ]
    if modules:
        entries += [("lib", d, b""), ("lib/bcmodules", d, b"")]
        entries += [(f"lib/bcmodules/{n}.ko", stat.S_IFREG | 0o644, b) for n, b in modules]
        order = "".join(f"{n}\n" for n, _ in modules).encode()
        entries.append(("bcmodules", stat.S_IFREG | 0o644, order))
    entries += list(extra)
    data = cpio_newc(entries)
    with open(dest, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(data)


# --------------------------------------------------------------------------
# QEMU and QMP
# --------------------------------------------------------------------------


class QMP:
    """A minimal QMP client over a unix socket."""

    def __init__(self, path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.file = self.sock.makefile("rwb")
        self.events: list[dict] = []
        greeting = self._read()
        assert "QMP" in greeting, greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def execute(self, cmd: str, timeout: float = 600, **args) -> object:
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.settimeout(timeout)
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {cmd}: {reply['error']}")
            return reply.get("return")

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


def wait_for(path: Path, pattern: str, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and pattern in path.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def qemu_command(
    kernel: Kernel, initrd: Path, sample: SampleSpec, console: Path, sock: Path
) -> list[str]:
    free = "" if sample.big else "init_on_free=1 "
    append = (
        f"console=ttysclp0 rdinit=/init panic=0 loglevel=7 "
        f"log_buf_len=4M {free}bcmode={sample.mode}"
    )
    cmd = [
        "qemu-system-s390x",
        "-M",
        "s390-ccw-virtio",
        "-cpu",
        "max",
        "-smp",
        str(sample.smp),
        "-m",
        str(sample.mem_mib),
        "-accel",
        "tcg",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-nodefaults",
        "-serial",
        f"file:{console}",
        "-qmp",
        f"unix:{sock},server=on,wait=off",
        "-kernel",
        str(kernel.vmlinuz),
        "-initrd",
        str(initrd),
        "-append",
        append,
    ]
    if sample.big:
        # MAP_NORESERVE: a guest larger than the host's RAM is refused by the kernel's
        # overcommit heuristic otherwise; TCG touches only the pages the guest writes.
        cmd += [
            "-object",
            f"memory-backend-ram,id=bcram,size={sample.mem_mib}M,reserve=off",
            "-machine",
            "memory-backend=bcram",
        ]
    if sample.mode in ("panic", "nmi"):
        cmd += ["-action", "panic=pause"]
    if sample.disk_mib:
        disk = sock.parent / "disk.img"
        cmd += [
            "-drive",
            f"file={disk},if=none,format=raw,id=bcdisk",
            "-device",
            "virtio-blk-ccw,drive=bcdisk",
        ]
    return cmd


def make_disk(path: Path, mib: int) -> None:
    """An empty ext4 file system image (mkfs.ext4 from e2fsprogs) for the guest."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    run(["mkfs.ext4", "-q", "-F", "-L", "backchain", "-E", "root_owner=0:0", str(path)])


def work_folder(scratch: Path, name: str, kernel: Kernel) -> Path:
    """``scratch/name``, with links to the kernel's vmlinux and System.map."""
    work = scratch / name
    work.mkdir(parents=True, exist_ok=True)
    for f in ("vmlinux", "System.map"):
        link = work / f
        link.unlink(missing_ok=True)
        link.symlink_to(kernel.dir / f)
    return work


def boot_and_dump(
    kernel: Kernel, initrd: Path, sample: SampleSpec, work: Path, timer: Timer, boot_timeout: float
) -> dict:
    """Boot, wait for the marker, dump.  Returns run information."""
    console = work / "console.log"
    sock = work / "qmp.sock"
    elf = work / "vmcore.elf"
    for p in (console, sock, elf):
        p.unlink(missing_ok=True)
    if sample.disk_mib:
        make_disk(work / "disk.img", sample.disk_mib)
    cmd = qemu_command(kernel, initrd, sample, console, sock)
    log("  $ " + " ".join(cmd))
    info: dict = {"qemu_command": cmd}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    qmp = None
    try:
        qmp = QMP(sock)
        ok = timer.run("boot to marker", wait_for, console, READY_MARKER, boot_timeout, proc)
        if not ok:
            raise SystemExit(
                f"{sample.name}: no {READY_MARKER} within {boot_timeout} s; see {console}"
            )
        if sample.disk_mib and "BACKCHAIN-MOUNTED" not in console.read_text(errors="replace"):
            raise SystemExit(f"{sample.name}: the guest did not mount its disk; see {console}")
        if sample.mode == "panic":
            timer.run("wait for panic", wait_status, qmp, "guest-panicked", 120)
        elif sample.mode == "nmi":
            time.sleep(2)
            qmp.execute("inject-nmi")
            try:
                timer.run("wait for restart handler", wait_status, qmp, "guest-panicked", 30)
            except TimeoutError:
                log("  guest did not stop by itself after the NMI")
            time.sleep(1)
        else:
            time.sleep(1)
        qmp.execute("stop")
        info["status_at_dump"] = qmp.execute("query-status")
        info["events"] = [e["event"] for e in qmp.events]
        if sample.big:
            timer.run("dump ELF (sparse)", dump_elf_sparse, qmp, elf)
        else:
            timer.run(
                "dump ELF", qmp.execute, "dump-guest-memory", paging=False, protocol=f"file:{elf}"
            )
        flat = work / "vmcore.kdump-zlib.flat"
        flat.unlink(missing_ok=True)
        timer.run(
            "dump kdump-zlib",
            qmp.execute,
            "dump-guest-memory",
            paging=False,
            protocol=f"file:{flat}",
            format="kdump-zlib",
            timeout=3600,
        )
        qmp.execute("quit")
    finally:
        if qmp:
            qmp.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.unlink(missing_ok=True)
    if shutil.which("makedumpfile"):
        kd = work / "vmcore.kdump-zlib"
        kd.unlink(missing_ok=True)
        with open(work / "vmcore.kdump-zlib.flat", "rb") as src:
            subprocess.run(
                ["makedumpfile", "-R", str(kd)], stdin=src, check=True, stdout=subprocess.DEVNULL
            )
    return info


def copy_sparse(src: Path, dest: Path, block: int = 1 << 20) -> int:
    """Copy ``src`` (a FIFO) to ``dest``, leaving blocks of zeros as holes; returns the bytes
    copied. QEMU writes the ELF core sequentially, so a 16 GiB guest takes only the disk its
    non-zero pages need."""
    zero = bytes(block)
    total = 0
    with open(src, "rb", buffering=0) as f, open(dest, "wb") as out:
        while True:
            chunk = f.read(block)
            if not chunk:
                break
            while len(chunk) < block:  # pipes return short reads
                more = f.read(block - len(chunk))
                if not more:
                    break
                chunk += more
            if chunk == zero:
                out.seek(len(chunk), os.SEEK_CUR)
            else:
                out.write(chunk)
            total += len(chunk)
        out.truncate(total)
    return total


def dump_elf_sparse(qmp: QMP, elf: Path) -> None:
    """QEMU's ELF core of a big guest, written into a FIFO and copied with holes."""
    import threading

    fifo = elf.with_suffix(".fifo")
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o600)
    result: dict = {}
    reader = threading.Thread(
        target=lambda: result.update(size=copy_sparse(fifo, elf)), daemon=True
    )
    reader.start()
    try:
        qmp.execute("dump-guest-memory", paging=False, protocol=f"file:{fifo}", timeout=3600)
    finally:
        reader.join(timeout=600)
        fifo.unlink(missing_ok=True)
    log(
        f"  ELF {result.get('size', 0) / 2**30:.1f} GiB, "
        f"{os.stat(elf).st_blocks * 512 / 2**20:.0f} MiB on disk"
    )


def wait_status(qmp: QMP, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if qmp.execute("query-status").get("status") == status:
            return
        time.sleep(0.5)
    raise TimeoutError(f"guest status never became {status}")


# --------------------------------------------------------------------------
# Console parsing
# --------------------------------------------------------------------------

TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
TASK = re.compile(
    r"task:(?P<comm>.*?)\s+state:(?P<state>\S+)\s.*?"
    r"pid:\s*(?P<pid>\d+)(?:.*?ppid:\s*(?P<ppid>\d+))?"
)
FRAME = re.compile(
    r"^\s*(?P<open>\()?\[<(?P<addr>[0-9a-f]+)>\]\s+"
    r"(?P<sym>[^\s)]+)(?:\s+\[(?P<module>[^\]\s]+)\])?"
)


def strip_ts(line: str) -> str:
    return TS.sub("", line.rstrip("\r\n"))


def parse_frames(lines: list[str], i: int) -> tuple[list[dict], int]:
    frames = []
    while i < len(lines):
        m = FRAME.match(lines[i])
        if not m:
            break
        sym = m.group("sym")
        frame = {
            "function": sym.split("+")[0],
            "symbol": sym,
            "address": "0x" + m.group("addr"),
            "reliable": m.group("open") is None,
        }
        if m.group("module"):
            frame["module"] = m.group("module")
        frames.append(frame)
        i += 1
    return frames, i


def parse_console(text: str) -> dict:
    raw = text.splitlines()
    lines = [strip_ts(l) for l in raw]
    facts: dict = {}
    for l in lines:
        if l.startswith("BACKCHAIN-UNAME "):
            facts["kernel_release"] = l.split(None, 1)[1].strip()
        elif l.startswith("BACKCHAIN-NCPUS "):
            parts = l.split()
            facts["cpus"] = int(parts[1])
            facts["cpus_online"] = parts[2].split("=", 1)[1]
        elif l.startswith("BACKCHAIN-MEMINFO "):
            facts["mem_total_kb"] = int(l.split()[2])
        elif l.startswith("BACKCHAIN-INIT-PID "):
            facts["init_pid"] = int(l.split()[1])
        elif l.startswith("BACKCHAIN-MODE "):
            facts["mode"] = l.split()[1]
        elif l.startswith("Linux version "):
            facts["linux_banner"] = l

    def block(begin: str, end: str) -> list[str]:
        try:
            a = lines.index(begin)
            b = lines.index(end, a)
        except ValueError:
            return []
        return lines[a + 1 : b]

    ps = []
    for l in block("BACKCHAIN-PS-BEGIN", "BACKCHAIN-PS-END"):
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$", l)
        if m:
            ps.append(
                {
                    "pid": int(m.group(1)),
                    "ppid": int(m.group(2)),
                    "stat": m.group(3),
                    "comm": m.group(4).strip(),
                }
            )
    facts["ps"] = ps

    # /proc/modules: name size refcount deps state address [taint]
    modules = []
    for l in block("BACKCHAIN-MODULES-BEGIN", "BACKCHAIN-MODULES-END"):
        parts = l.split()
        if len(parts) >= 6 and parts[1].isdigit():
            modules.append(
                {
                    "name": parts[0],
                    "size": int(parts[1]),
                    "refcount": int(parts[2]) if parts[2].isdigit() else parts[2],
                    "used_by": [d for d in parts[3].split(",") if d and d != "-"],
                    "state": parts[4],
                    "address": parts[5],
                    "taint": parts[6].strip("()") if len(parts) > 6 else "",
                }
            )
    if modules:
        facts["modules"] = modules

    tasks = []
    for l in block("BACKCHAIN-STAT-BEGIN", "BACKCHAIN-STAT-END"):
        m = re.match(r"BCSTAT (\d+) \((.*)\) (\S) (\d+)$", l)
        if m:
            tasks.append(
                {
                    "pid": int(m.group(1)),
                    "comm": m.group(2),
                    "state": m.group(3),
                    "ppid": int(m.group(4)),
                }
            )
    facts["proc_stat"] = tasks

    # sysrq-t: "task:<comm> state:<S> stack:<n> pid:<n> [tgid:<n>] ppid:<n>"
    traces = []
    # The kernel's lines start at "sysrq: Show State" and end before the
    # scheduler/workqueue summaries that follow the per-task traces.
    a = next((k for k, l in enumerate(lines) if "sysrq: Show State" in l), len(lines))
    b = next(
        (
            k
            for k in range(a, len(lines))
            if lines[k].startswith(("Sched Debug", "Showing busy", "BACKCHAIN-SYSRQ-T-END"))
        ),
        len(lines),
    )
    i = a
    while i < b:
        m = TASK.search(lines[i])
        if not m:
            i += 1
            continue
        entry = {
            "pid": int(m.group("pid")),
            "comm": m.group("comm").strip(),
            "state": m.group("state"),
            "ppid": int(m.group("ppid")) if m.group("ppid") else None,
            "line": lines[i].strip(),
            "frames": [],
        }
        i += 1
        while i < b and not TASK.search(lines[i]):
            if lines[i].strip() == "Call Trace:":
                frames, i = parse_frames(lines, i + 1)
                entry["frames"] += frames
                continue
            if FRAME.match(lines[i]):
                frames, i = parse_frames(lines, i)
                entry["frames"] += frames
                continue
            if lines[i].startswith(("Sched Debug", "Showing busy", "runnable tasks", "cpu#")):
                break
            i += 1
        entry["functions"] = [f["function"] for f in entry["frames"]]
        traces.append(entry)
    facts["sysrq_t"] = traces

    # A panic after the marker (sysrq-c).
    for j, l in enumerate(lines):
        if "Kernel panic - not syncing" in l:
            pan: dict = {"message": l.strip()}
            for k in range(j - 1, max(j - 5, 0), -1):
                if "sysrq: Trigger a crash" in lines[k]:
                    pan["trigger"] = lines[k].strip()
            for k in range(j + 1, min(j + 200, len(lines))):
                m = re.match(
                    r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) "
                    r"Comm: (\S+)",
                    lines[k],
                )
                if m:
                    pan.update(cpu=int(m.group(1)), pid=int(m.group(2)), comm=m.group(3))
                if lines[k].strip() == "Call Trace:":
                    frames, _ = parse_frames(lines, k + 1)
                    pan["frames"] = frames
                    pan["functions"] = [f["function"] for f in frames]
                    break
            facts["panic"] = pan
            break
    return facts


# --------------------------------------------------------------------------
# ELF check and packaging
# --------------------------------------------------------------------------


def check_elf(path: Path) -> dict:
    with open(path, "rb") as f:
        hdr = f.read(64)
        assert hdr[:4] == b"\x7fELF", "not ELF"
        ei_class, ei_data = hdr[4], hdr[5]
        (
            e_type,
            e_machine,
            _e_version,
            _e_entry,
            e_phoff,
            e_shoff,
            _e_flags,
            e_ehsize,
            e_phentsize,
            e_phnum,
            _e_shentsize,
            e_shnum,
            _e_shstrndx,
        ) = struct.unpack(">HHIQQQIHHHHHH", hdr[16:64])
        f.seek(e_phoff)
        phdrs = []
        for _ in range(e_phnum):
            (p_type, _p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _p_align) = (
                struct.unpack(">IIQQQQQQ", f.read(e_phentsize)[:56])
            )
            phdrs.append(
                {
                    "type": p_type,
                    "offset": p_offset,
                    "vaddr": p_vaddr,
                    "paddr": p_paddr,
                    "filesz": p_filesz,
                    "memsz": p_memsz,
                }
            )
    info = {
        "ei_class": ei_class,
        "ei_data": ei_data,
        "e_type": e_type,
        "e_machine": e_machine,
        "e_phoff": e_phoff,
        "e_phnum": e_phnum,
        "e_shoff": e_shoff,
        "e_shnum": e_shnum,
        "e_ehsize": e_ehsize,
        "program_headers": phdrs,
        "size": path.stat().st_size,
    }
    ok = ei_class == 2 and ei_data == 2 and e_type == 4 and e_machine == 22
    if not ok:
        raise SystemExit(f"{path}: not an ELF64 big-endian s390 core: {info}")
    return info


def vmcoreinfo_text(f, head: bytes) -> bytes:
    """The kernel's VMCOREINFO note in the ELF core's memory, through the pointer at absolute
    0xE0C (docs/real-dumps.md); reads a few KiB, never the whole (16 GiB) file."""

    def phys(address: int, size: int) -> bytes:
        (e_phoff,) = struct.unpack_from(">Q", head, 32)
        (e_phnum,) = struct.unpack_from(">H", head, 56)
        for i in range(e_phnum):
            p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from(
                ">IIQQQQ", head, e_phoff + 56 * i
            )
            if p_type == 1 and p_paddr <= address < p_paddr + p_filesz:
                f.seek(p_offset + address - p_paddr)
                return f.read(size)
        return b""

    pointer = phys(0xE0C, 8)
    return phys(int.from_bytes(pointer, "big"), 16 << 10) if len(pointer) == 8 else b""


def dump_cpus(elf: Path, system_map: Path) -> list[dict]:
    """Per-CPU PSW and r15 from the NT_PRSTATUS notes, with the PSW address
    named from System.map (+ KERNELOFFSET found in the VMCOREINFO text in
    guest memory).  A convenience for humans; the walker must not rely on
    it."""
    with open(elf, "rb") as f:
        data = f.read(1 << 20)  # headers and notes (QEMU writes them before the memory)
        m = re.search(rb"KERNELOFFSET=([0-9a-f]+)\n", vmcoreinfo_text(f, data))
    offset = int(m.group(1), 16) if m else 0
    syms = []
    for line in system_map.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16) + offset, parts[2]))
    syms.sort()
    addrs = [a for a, _ in syms]
    (e_phoff,) = struct.unpack_from(">Q", data, 32)
    (e_phnum,) = struct.unpack_from(">H", data, 56)
    cpus = []
    for i in range(e_phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(">IIQQQQ", data, e_phoff + 56 * i)
        if p_type != 4:  # PT_NOTE
            continue
        o, end = p_offset, p_offset + p_filesz
        while o < end:
            namesz, descsz, ntype = struct.unpack_from(">III", data, o)
            name = data[o + 12 : o + 12 + namesz].rstrip(b"\0")
            desc = o + 12 + ((namesz + 3) & ~3)
            o = desc + ((descsz + 3) & ~3)
            if ntype != 1 or name != b"CORE":
                continue
            # elf_prstatus: pr_reg (s390_regs: psw mask/addr, gprs) at 112
            mask, addr = struct.unpack_from(">QQ", data, desc + 112)
            gprs = struct.unpack_from(">16Q", data, desc + 128)
            k = bisect.bisect_right(addrs, addr) - 1
            user = bool(mask >> (63 - 15) & 1)
            sym = None
            if not user and k >= 0 and addr - addrs[k] < 0x10000:
                sym = f"{syms[k][1]}+{addr - addrs[k]:#x}"
            cpus.append(
                {
                    "cpu": len(cpus),
                    "psw_mask": f"{mask:#018x}",
                    "psw_addr": f"{addr:#x}",
                    "psw_symbol": sym,
                    "problem_state": user,
                    "wait": bool(mask >> (63 - 14) & 1),
                    "r15": f"{gprs[15]:#x}",
                }
            )
    return cpus


def zstd(src: Path, dest: Path, level: int = 19) -> None:
    run(["zstd", "-q", "-f", f"-{level}", "--long=27", "-T0", str(src), "-o", str(dest)])


def package_sample(
    sample: SampleSpec,
    kernel: Kernel,
    work: Path,
    out: Path,
    info: dict,
    timer: Timer,
    bb_version: str,
    level: int,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    elf = work / "vmcore.elf"
    elf_info = check_elf(elf)
    timer.run("zstd vmcore", zstd, elf, out / "vmcore.zst", level)
    packed_map = kernel.dir / "System.map.zst"
    if not packed_map.exists() or packed_map.stat().st_mtime < kernel.system_map.stat().st_mtime:
        zstd(kernel.system_map, packed_map)  # (re)pack: a rebuilt kernel keeps its release
    shutil.copyfile(kernel.dir / "System.map.zst", out / "System.map.zst")
    os.chmod(out / "vmcore.zst", 0o644)
    cfg = [l for l in kernel.config.read_text().splitlines() if CONFIG_PATTERN.match(l)]
    (out / "config.txt").write_text(
        f"# selected lines of config-{kernel.release} "
        f"({kernel.package} {kernel.version})\n" + "\n".join(cfg) + "\n"
    )
    console_text = (work / "console.log").read_text(errors="replace")
    (out / "console.log").write_text(console_text)
    facts = parse_console(console_text)
    facts = {
        "sample": sample.name,
        "description": sample.description,
        "kernel_release": facts.pop("kernel_release", None),
        "cpus": facts.pop("cpus", None),
        "guest_ram_mib": sample.mem_mib,
        **facts,
        "notes": [
            "ps/proc_stat/sysrq_t are printed by /init before the dump; "
            "the dump is taken a few seconds later. Blocked tasks keep "
            "their state; pid 1 (init) wrote the sysrq trigger (its "
            "sysrq-t trace shows that write) but sleeps in wait at dump "
            "time; CPU hogs (dd, sh loop) move.",
            "sysrq_t frames with reliable=false were printed in parentheses by the kernel.",
        ],
        "provenance": {
            "kernel_package": f"{kernel.package} {kernel.version}",
            "dbg_package": f"{kernel.package}-dbg {kernel.version}",
            "busybox_static": bb_version,
            "qemu": output(["qemu-system-s390x", "--version"]).splitlines()[0],
            "qemu_command": [a.replace(str(work.parent), "$SCRATCH") for a in info["qemu_command"]],
            "status_at_dump": info.get("status_at_dump"),
            "qmp_events": info.get("events"),
            "elf": {k: v for k, v in elf_info.items() if k != "program_headers"},
            "elf_program_headers": elf_info["program_headers"],
            "kernel_offset_and_cpus_note": "dump_cpus is read from the "
            "ELF notes by the generator, not from the console",
            "dump_cpus": dump_cpus(elf, kernel.system_map),
            "vmcore_zst_bytes": (out / "vmcore.zst").stat().st_size,
            "timings_s": timer.steps,
        },
    }
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")


# --------------------------------------------------------------------------
# Big guests (--memory): not bundled, cached
# --------------------------------------------------------------------------

#: What ``--big`` makes: the 6.12 busy workload at 512 MiB (the baseline every big-guest
#: figure is compared with) and at 16 GiB.
BIG_SAMPLE = "bpo12-6.12-busy"
BIG_SIZES = "512M,16G"


def parse_mib(text: str) -> int:
    """``16G``, ``512M``, ``1T`` or a plain number of MiB."""
    m = re.fullmatch(r"\s*(\d+)\s*([MGT]?)(?:i?B)?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 512M, 16G)")
    return int(m[1]) << {"": 0, "M": 0, "G": 10, "T": 20}[m[2].upper()]


def size_label(mib: int) -> str:
    return f"{mib >> 10}G" if mib % 1024 == 0 else f"{mib}M"


def big_dir(scratch: Path, name: str) -> Path:
    """Where a big guest's files live: ``cache_dir("real", "big", NAME)`` (NAME is
    ``SAMPLE-SIZE``, e.g. ``bpo12-6.12-busy-16G``); tests/helpers/bigguest.py reads it."""
    return scratch / "big" / name


def package_big(sample: SampleSpec, kernel: Kernel, work: Path, info: dict, timer: Timer) -> None:
    """facts.json (the console's truth, as for a bundled sample) and System.map.zst beside the
    raw dumps in ``work``; nothing is compressed further (the kdump file is the small one)."""
    packed_map = kernel.dir / "System.map.zst"
    if not packed_map.exists() or packed_map.stat().st_mtime < kernel.system_map.stat().st_mtime:
        zstd(kernel.system_map, packed_map)
    shutil.copyfile(packed_map, work / "System.map.zst")
    elf = work / "vmcore.elf"
    elf_info = check_elf(elf)
    facts = parse_console((work / "console.log").read_text(errors="replace"))
    files = {
        f.name: {"bytes": f.stat().st_size, "on_disk": f.stat().st_blocks * 512}
        for f in sorted(work.glob("vmcore.*"))
        if f.is_file()
    }
    facts = {
        "sample": sample.name,
        "description": sample.description,
        "kernel_release": facts.pop("kernel_release", None),
        "cpus": facts.pop("cpus", None),
        "guest_ram_mib": sample.mem_mib,
        **facts,
        "provenance": {
            "kernel_package": f"{kernel.package} {kernel.version}",
            "qemu": output(["qemu-system-s390x", "--version"]).splitlines()[0],
            "qemu_command": [a.replace(str(work), "$WORK") for a in info["qemu_command"]],
            "status_at_dump": info.get("status_at_dump"),
            "elf": {k: v for k, v in elf_info.items() if k != "program_headers"},
            "elf_program_headers": elf_info["program_headers"],
            "dump_cpus": dump_cpus(elf, kernel.system_map),
            "files": files,
            "timings_s": timer.steps,
        },
    }
    (work / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")


def make_big(names: list[str], sizes: list[int], scratch: Path, args, total: Timer) -> list[Path]:
    """Each sample of ``names`` booted with each memory size of ``sizes`` (MiB), dumped as
    kdump-zlib (zero pages written once) and as a sparse ELF core; a guest already made
    (its facts.json exists) is kept unless ``--rebuild``."""
    busybox, _ = total.run("busybox", fetch_busybox, scratch)
    initrd = scratch / "initrd.cpio.gz"
    build_initramfs(busybox, initrd)
    made = []
    for name in names:
        for mib in sizes:
            base = SAMPLES[name]
            sample = dataclasses.replace(
                base,
                name=f"{name}-{size_label(mib)}",
                mem_mib=mib,
                smp=args.smp or base.smp,
                big=True,
                description=f"{base.description}; {size_label(mib)} guest RAM, no init_on_free",
            )
            work = big_dir(scratch, sample.name)
            if (work / "facts.json").is_file() and not args.rebuild:
                log(f"{sample.name}: already in {work} (--rebuild to make it again)")
                made.append(work)
                continue
            if base.modules:
                raise SystemExit(f"{name}: --memory takes samples without modules")
            # The bundled sample's own kernel package unless pinned: the big guest and the
            # bundled sample then share the -dbg vmlinux already in the cache.
            pinned = getattr(args, f"package_{base.kernel}")
            if not pinned:
                bundled = json.loads((args.out / name / "facts.json").read_text())
                pinned = bundled_kernels(args.out)[bundled["kernel_release"]][0]
            kernel = fetch_kernel(KERNELS[base.kernel], scratch, pinned, total)
            (work / "facts.json").unlink(missing_ok=True)
            work = work_folder(scratch / "big", sample.name, kernel)
            timer = Timer()
            info = timer.run(
                f"{sample.name}: boot+dump",
                boot_and_dump,
                kernel,
                initrd,
                sample,
                work,
                timer,
                args.boot_timeout,
            )
            (work / "vmcore.kdump-zlib.flat").unlink(missing_ok=True)
            package_big(sample, kernel, work, info, timer)
            log(f"{sample.name}: {work}; timings {timer.steps}")
            made.append(work)
    return made


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Samples: " + ", ".join(f"{s.name} ({s.description})" for s in SAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "samples",
        nargs="*",
        default=DEFAULT_SAMPLES,
        help=f"samples to make (default: {' '.join(DEFAULT_SAMPLES)}; 'all' for all)",
    )
    ap.add_argument("--list", action="store_true", help="list samples")
    ap.add_argument(
        "--debug-only",
        action="store_true",
        help="only fetch the -dbg vmlinux and System.map of every bundled sample's kernel "
        "into SCRATCH/kernels/RELEASE/ (what the tests that need DWARF look for)",
    )
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="bundle directory (default: %(default)s)"
    )
    ap.add_argument(
        "--scratch",
        type=Path,
        default=DEFAULT_SCRATCH,
        help="big files: debs, kernels, raw dumps (default: %(default)s)",
    )
    ap.add_argument(
        "--zgetdump-sysroot",
        action="store_true",
        help="only unpack IBM's zgetdump (s390-tools:s390x) and its libraries into "
        f"{cache_dir('zgetdump', 'sysroot')} for tests/test_zgetdump.py",
    )
    ap.add_argument(
        "--modules-only",
        action="store_true",
        help=f"only unpack the Debian modules of {QEMU_FILES_SAMPLE}'s kernel (its image "
        "package) into SCRATCH/kernels/RELEASE/modules/ (what tests/test_code_audit.py "
        "reads); no boot",
    )
    ap.add_argument(
        "--qemu-files",
        action="store_true",
        help=f"only boot {QEMU_FILES_SAMPLE} and keep QEMU's raw ELF and kdump-zlib dumps "
        "(what tests/test_formats.py and test_zgetdump.py compare; they skip without them, "
        "in CI too) and the kernel's modules in SCRATCH; no bundle is written",
    )
    ap.add_argument("--mem", type=int, help="override guest RAM (MiB)")
    ap.add_argument(
        "--memory",
        metavar="SIZE[,SIZE]",
        help="big guests, not bundled: boot each sample (default " + BIG_SAMPLE + ") with each "
        "RAM size (512M, 16G, 64G) and keep its kdump-zlib and sparse ELF dumps, console and "
        "facts.json in SCRATCH/big/SAMPLE-SIZE/",
    )
    ap.add_argument(
        "--big",
        action="store_true",
        help=f"the big-guest pair the benchmark and test read: {BIG_SAMPLE} --memory {BIG_SIZES}",
    )
    ap.add_argument("--rebuild", action="store_true", help="with --memory: make it again")
    ap.add_argument("--smp", type=int, help="override guest CPU count")
    ap.add_argument("--boot-timeout", type=float, default=300)
    ap.add_argument("--zstd-level", type=int, default=19)
    ap.add_argument(
        "--skip-install",
        action="store_true",
        help="do not apt-get install host packages / add arch",
    )
    for key in KERNELS:
        ap.add_argument(
            f"--package-{key}",
            metavar="PKG",
            help=f"pin the {key} kernel image package (default: newest with -dbg)",
        )
    args = ap.parse_args(argv)

    if args.list:
        for s in SAMPLES.values():
            print(
                f"{s.name:20} kernel {s.kernel:5} {s.mode:6} "
                f"{s.mem_mib} MiB smp {s.smp}: {s.description}"
            )
        return 0
    if args.big:
        args.memory = args.memory or BIG_SIZES
    big_sizes = [parse_mib(t) for t in args.memory.split(",")] if args.memory else []
    if big_sizes and args.samples == DEFAULT_SAMPLES:
        args.samples = [BIG_SAMPLE]
    names = list(SAMPLES) if args.samples == ["all"] else args.samples
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        ap.error(f"unknown samples {unknown}; see --list")
    if os.geteuid() != 0:
        ap.error("must run as root (apt-get, dpkg --add-architecture)")
    if args.zgetdump_sysroot:
        if not args.skip_install:
            ensure_s390x_arch()
        print(make_zgetdump_sysroot(cache_dir("zgetdump", "sysroot")))
        return 0
    if args.debug_only or args.modules_only or args.qemu_files:
        timer = Timer()
        args.scratch.mkdir(parents=True, exist_ok=True)
        if not args.skip_install:
            if args.qemu_files:
                timer.run("host packages", ensure_host_packages)
            timer.run("add s390x arch + apt-get update", ensure_s390x_arch)
        if args.debug_only:
            for line in fetch_bundled_debug(args.out, args.scratch, timer):
                print(line)
        if args.modules_only and not args.qemu_files:  # --qemu-files unpacks them too
            print(fetch_sample_modules(args.out, args.scratch, timer))
        if args.qemu_files:
            print(make_qemu_files(args.out, args.scratch, timer, args.boot_timeout))
        return 0

    total = Timer()
    args.scratch.mkdir(parents=True, exist_ok=True)
    if not args.skip_install:
        total.run("host packages", ensure_host_packages)
        total.run("add s390x arch + apt-get update", ensure_s390x_arch)
    if big_sizes:
        for work in make_big(names, big_sizes, args.scratch, args, total):
            print(work)
        log(f"setup timings: {total.steps}")
        return 0
    busybox, bb_version = total.run("busybox", fetch_busybox, args.scratch)
    initrd = args.scratch / "initrd.cpio.gz"
    build_initramfs(busybox, initrd)

    kernels: dict[str, Kernel] = {}
    for name in names:
        sample = SAMPLES[name]
        if args.mem or args.smp:
            sample = dataclasses.replace(
                sample, mem_mib=args.mem or sample.mem_mib, smp=args.smp or sample.smp
            )
        if sample.kernel not in kernels:
            kernels[sample.kernel] = fetch_kernel(
                KERNELS[sample.kernel],
                args.scratch,
                getattr(args, f"package_{sample.kernel}"),
                total,
            )
        kernel = kernels[sample.kernel]
        work = work_folder(args.scratch, name, kernel)
        timer = Timer()
        sample_initrd = initrd
        if sample.modules:
            mods = fetch_modules(
                KERNELS[sample.kernel], kernel, args.scratch, sample.modules, total
            )
            sample_initrd = work / "initrd.cpio.gz"
            build_initramfs(busybox, sample_initrd, mods)
        info = timer.run(
            f"{name}: boot+dump",
            boot_and_dump,
            kernel,
            sample_initrd,
            sample,
            work,
            timer,
            args.boot_timeout,
        )
        timer.run(
            f"{name}: package",
            package_sample,
            sample,
            kernel,
            work,
            args.out / name,
            info,
            timer,
            bb_version,
            args.zstd_level,
        )
        size = sum(p.stat().st_size for p in (args.out / name).iterdir())
        log(f"{name}: {kernel.release}, bundle {size / 1e6:.1f} MB; timings {timer.steps}")
        if size > 10_000_000:
            log(f"WARNING: {name} bundle exceeds 10 MB; reduce --mem")
    log(f"setup timings: {total.steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
