#!/usr/bin/env python3
"""Rebuild Debian 11's linux 5.10 from its source package and make a real dump of it.

Debian 11 (bullseye) became LTS without s390x, so the mirror no longer has the binary
s390x 5.10 kernel packages, but it still has the *source* package.  This script

  1. reads bullseye's Sources index through a private apt configuration (the mirror is the
     one the host's own apt sources name; /etc/apt is not changed) and downloads the newest
     ``linux`` 5.10 source package (``apt-get source --download-only``),
  2. unpacks it with ``dpkg-source -x`` (Debian's patches applied),
  3. cross-compiles it for s390x with Debian 12's ``gcc-s390x-linux-gnu`` (gcc 12) from
     ``defconfig`` with a reduced configuration (see CONFIG_CHANGES: no networking, no
     DRM/sound/KVM/SCSI/most file systems, nothing built as a module, full DWARF), and
  4. boots the result with generate_real.py's initramfs and workload and packages the dump
     exactly like the other samples (``samples/real/rebuilt-5.10-busy``).

The result is *not* Debian's binary kernel: same source, different compiler and config.

Host packages: gcc-s390x-linux-gnu, make, bc, flex, bison, libelf-dev, libssl-dev,
dpkg-dev (dpkg-source), plus generate_real.py's.  Root, Debian 12.

    sudo python3 samples/build_kernel_510.py [--scratch DIR] [--jobs 2]

Work files (source, build tree, kernels/5.10.223/{vmlinuz,vmlinux,System.map,config}, the raw
dump) go under generate_real.py's ``cache_dir("real")`` unless ``--scratch`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_real as gr

DEFAULT_SCRATCH = gr.DEFAULT_SCRATCH
BUILD_PACKAGES = (
    "gcc-s390x-linux-gnu",
    "make",
    "bc",
    "flex",
    "bison",
    "libelf-dev",
    "libssl-dev",
    "dpkg-dev",
)
MAKE = ["make", "ARCH=s390", "CROSS_COMPILE=s390x-linux-gnu-"]


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: ``scripts/config`` arguments applied on top of ``defconfig``.  MODULES stays on only
#: because KPROBES and LIVEPATCH depend on it in 5.10; with nothing left as ``m`` (tristates
#: that defconfig had as ``m`` become ``y``) no module is built or loaded.
DISABLE = _names(
    "NET DRM SOUND KVM VIRTUALIZATION BTRFS_FS XFS_FS EXT4_FS EXT2_FS EXT3_FS JBD2 OCFS2_FS "
    "GFS2_FS NFS_FS NFSD CIFS CEPH_FS FUSE_FS OVERLAY_FS SQUASHFS ISO9660_FS UDF_FS MSDOS_FS "
    "VFAT_FS NILFS2_FS F2FS_FS CONFIGFS_FS MD SCSI BLK_DEV_DM INFINIBAND VFIO VHOST VIRTIO "
    "VIRTIO_MENU CRYPTO_HW ZCRYPT PCI S390_HYPFS_FS ATA BLK_DEV_NBD BLK_DEV_RBD BLK_DEV_LOOP "
    "BLK_DEV_DRBD BLK_DEV_NULL_BLK BLK_DEV_RAM DASD DCSSBLK SCM_BLOCK ZRAM BLK_DEV_IO_TRACE "
    "BPF_SYSCALL SECURITY AUDIT CGROUPS NAMESPACES KEXEC CRASH_DUMP LOCK_STAT PROVE_LOCKING "
    "DEBUG_LOCK_ALLOC KASAN DEBUG_PAGEALLOC DEBUG_OBJECTS DEBUG_KMEMLEAK PROFILING HOTPLUG_PCI "
    "S390_GUEST TN3270 TN3215 VMCP CMM MONWRITER S390_VMUR HMC_DRV SCLP_OFB TEST_BPF "
    "TEST_LIVEPATCH XZ_DEC_TEST SAMPLES WATCHDOG IMA EVM INTEGRITY KEYS "
    "SYSTEM_DATA_VERIFICATION MODULE_SIG MODVERSIONS DEBUG_INFO_REDUCED DEBUG_INFO_SPLIT "
    "DEBUG_INFO_BTF HZ_100 PREEMPT_NONE TORTURE_TEST RCU_TORTURE_TEST RCU_REF_SCALE_TEST "
    "GUP_BENCHMARK"
)
ENABLE = _names(
    "MODULES KPROBES KPROBES_ON_FTRACE LIVEPATCH DEBUG_INFO DEBUG_INFO_DWARF4 VMAP_STACK HZ_250 "
    "PREEMPT_VOLUNTARY MAGIC_SYSRQ PRINTK PRINTK_TIME DEVTMPFS BLK_DEV_INITRD RD_GZIP SCLP_TTY "
    "SCLP_CONSOLE SCLP_VT220_TTY SCLP_VT220_CONSOLE FTRACE FUNCTION_TRACER "
    "FUNCTION_GRAPH_TRACER PROC_FS SYSFS TMPFS BINFMT_ELF BINFMT_SCRIPT TTY UNIX98_PTYS FUTEX "
    "EPOLL SIGNALFD SMP"
)
VALUES = {"HZ": "250", "NR_CPUS": "64"}
#: Options that must come out as set for the sample to mean what it claims.
REQUIRED = _names(
    "VMAP_STACK HZ_250 PREEMPT_VOLUNTARY MAGIC_SYSRQ DEVTMPFS BLK_DEV_INITRD RD_GZIP "
    "DEBUG_INFO SCLP_VT220_CONSOLE KPROBES FUNCTION_GRAPH_TRACER LIVEPATCH"
)

SAMPLE = gr.SampleSpec(
    "rebuilt-5.10-busy",
    "5.10",
    "busy",
    128,
    2,
    "Debian 11's linux 5.10 source rebuilt with Debian 12's gcc 12 (s390x cross) and a "
    "reduced config, full workload",
)


def log(msg: str) -> None:
    gr.log(msg)


def ensure_build_packages(packages: tuple[str, ...] = BUILD_PACKAGES) -> None:
    def installed(pkg: str) -> bool:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        )
        return r.returncode == 0 and r.stdout.endswith(" installed")

    missing = [p for p in packages if not installed(p)]
    if missing:
        gr.run(["apt-get", "install", "-y", "--no-install-recommends", *missing])


class SourceApt:
    """bullseye's Sources index through a private apt configuration (no /etc/apt change)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "apt-bullseye-src"
        uri, _key = gr.debian_mirror()
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources = self.root / "sources.list"
        sources.write_text(f"deb-src [signed-by={keyring}] {uri} bullseye main\n")
        self.opts = [
            "-o", f"Dir::Etc::SourceList={sources}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={self.root / 'lists'}",
            "-o", f"Dir::Cache={self.root / 'cache'}",
            "-o", "APT::Sandbox::User=root",
        ]  # fmt: skip

    def newest_linux_510(self) -> str:
        gr.run(["apt-get", *self.opts, "update"], stdout=subprocess.DEVNULL)
        text = gr.output(["apt-cache", *self.opts, "showsrc", "linux"])
        versions = re.findall(r"^Version: (5\.10\.\S+)$", text, re.M)
        if not versions:
            raise SystemExit("bullseye's Sources list no linux 5.10 source package")
        return max(versions, key=gr.version_key)

    def download(self, dest: Path, version: str) -> None:
        gr.run(
            ["apt-get", *self.opts, "source", "--download-only", f"linux={version}"],
            cwd=dest,
            stdout=subprocess.DEVNULL,
        )


def fetch_source(scratch: Path, timer: gr.Timer) -> tuple[Path, str]:
    apt = SourceApt(scratch)
    version = apt.newest_linux_510()
    src = scratch / "src"
    tree = src / "linux-5.10"
    if (tree / "Makefile").exists():
        return tree, version
    src.mkdir(parents=True, exist_ok=True)
    timer.run(f"download linux {version} source", apt.download, src, version)
    (dsc,) = src.glob(f"linux_{version}.dsc")
    timer.run("dpkg-source -x", gr.run, ["dpkg-source", "--no-check", "-x", dsc.name, tree.name],
              cwd=src, stdout=subprocess.DEVNULL)  # fmt: skip
    return tree, version


def configure(tree: Path, config: Path) -> None:
    """Write the reduced configuration to ``config`` (normally ``tree/.config``).

    Two passes: with MODULES off, olddefconfig turns every ``m`` of defconfig into ``y``;
    the second pass turns MODULES back on (KPROBES and LIVEPATCH need it) with nothing
    left modular.
    """
    env = {**os.environ, "KCONFIG_CONFIG": str(config)}
    gr.run([*MAKE, "defconfig"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    first: list[str] = ["--file", str(config)]
    for name in DISABLE:
        first += ["-d", name]
    first += ["-d", "MODULES"]
    for name in ENABLE:
        if name not in ("MODULES", "KPROBES", "KPROBES_ON_FTRACE", "LIVEPATCH"):
            first += ["-e", name]
    for name, value in VALUES.items():
        first += ["--set-val", name, value]
    gr.run(["scripts/config", *first], cwd=tree)
    gr.run([*MAKE, "olddefconfig"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    second = ["--file", str(config), "-d", "MODULE_SIG", "-d", "MODVERSIONS"]
    for name in ("MODULES", "KPROBES", "LIVEPATCH", "KPROBES_ON_FTRACE"):
        second += ["-e", name]
    gr.run(["scripts/config", *second], cwd=tree)
    gr.run([*MAKE, "olddefconfig"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    text = config.read_text()
    missing = [n for n in REQUIRED if f"\nCONFIG_{n}=y\n" not in text]
    if missing or "=m\n" in text:
        raise SystemExit(f"config: missing {missing} or modules left as =m")


def build(tree: Path, jobs: int, timer: gr.Timer) -> None:
    if not (tree / ".config").exists():
        configure(tree, tree / ".config")
    timer.run("make bzImage", gr.run, [*MAKE, f"-j{jobs}", "bzImage"], cwd=tree,
              stdout=subprocess.DEVNULL)  # fmt: skip


def install(tree: Path, version: str, scratch: Path) -> gr.Kernel:
    release = (tree / "include" / "config" / "kernel.release").read_text().strip()
    kdir = scratch / "kernels" / release
    kdir.mkdir(parents=True, exist_ok=True)
    kernel = gr.Kernel(release, "linux (source)", version, kdir)
    for src, dest in (
        (tree / "arch" / "s390" / "boot" / "bzImage", kernel.vmlinuz),
        (tree / "vmlinux", kernel.vmlinux),
        (tree / "System.map", kernel.system_map),
        (tree / ".config", kernel.config),
    ):
        shutil.copyfile(src, dest)
    # generate_real.package_sample reuses an existing System.map.zst; a rebuild keeps the
    # release name, so drop the old one.
    (kdir / "System.map.zst").unlink(missing_ok=True)
    return kernel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH)
    ap.add_argument("--out", type=Path, default=gr.DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--boot-timeout", type=float, default=300)
    ap.add_argument("--zstd-level", type=int, default=19)
    ap.add_argument("--skip-install", action="store_true", help="do not apt-get install")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("must run as root (apt-get)")
    timer = gr.Timer()
    args.scratch.mkdir(parents=True, exist_ok=True)
    if not args.skip_install:
        timer.run("host packages", gr.ensure_host_packages)
        timer.run("build packages", ensure_build_packages)
    tree, version = fetch_source(args.scratch, timer)
    build(tree, args.jobs, timer)
    kernel = install(tree, version, args.scratch)
    busybox, bb_version = timer.run("busybox", gr.fetch_busybox, args.scratch)
    initrd = args.scratch / "initrd.cpio.gz"
    gr.build_initramfs(busybox, initrd)
    work = args.scratch / SAMPLE.name
    work.mkdir(parents=True, exist_ok=True)
    info = timer.run("boot+dump", gr.boot_and_dump, kernel, initrd, SAMPLE, work, timer,
                     args.boot_timeout)  # fmt: skip
    out = args.out / SAMPLE.name
    gr.package_sample(SAMPLE, kernel, work, out, info, timer, bb_version, args.zstd_level)
    # package_sample names Debian binary packages; say what this kernel really is.
    facts = json.loads((out / "facts.json").read_text())
    gcc = gr.output(["s390x-linux-gnu-gcc", "--version"]).splitlines()[0]
    prov = facts["provenance"]
    prov["kernel_package"] = (
        f"rebuilt from Debian source package linux {version} (bullseye) with {gcc}; "
        "reduced config (see config.txt and samples/build_kernel_510.py); not Debian's binary"
    )
    prov["dbg_package"] = None
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    cfg = (out / "config.txt").read_text().splitlines()
    cfg[0] = f"# selected lines of the .config of {kernel.release} (rebuilt from linux {version})"
    (out / "config.txt").write_text("\n".join(cfg) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    log(f"{SAMPLE.name}: {kernel.release}, bundle {size / 1e6:.1f} MB; timings {timer.steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
