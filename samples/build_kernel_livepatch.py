#!/usr/bin/env python3
"""Rebuild Debian's linux 6.12 with livepatch and make real dumps of stuck and stacked patches.

Debian's s390x kernels have no ``CONFIG_LIVEPATCH``.  This script

  1. reads bookworm-backports' Sources index through a private apt configuration (the mirror
     the host's own apt sources name; /etc/apt is not changed) and downloads the ``linux``
     6.12 source package that the ``bpo12-6.12-*`` samples' binary kernel was built from
     (``apt-get source --download-only``; ``--version`` pins another),
  2. unpacks it with ``dpkg-source -x`` (Debian's patches applied),
  3. cross-compiles it for s390x with Debian 12's ``gcc-s390x-linux-gnu`` from ``defconfig``
     reduced as CONFIG_CHANGES says (nothing modular but the livepatch samples; LIVEPATCH,
     DYNAMIC_DEBUG, full DWARF, BTF made by Debian's ``dwarves``), builds the kernel's own
     livepatch test modules (``tools/testing/selftests/livepatch/test_modules``, ``test_klp_*``)
     and this project's pair ``samples/klp_modules`` (``bcklp_target``, ``bcklp_patch``) as
     external modules (``make M=``),
  4. boots the result with generate_real.py's initramfs, workload and QEMU command, runs one
     livepatch scenario per sample (SCENARIOS), has the guest print its own view
     (``/proc/PID/patch_state``, ``/sys/kernel/livepatch/*``, the kernel's dynamic-debug lines
     of ``kernel/livepatch/transition.c``), dumps and bundles it like the other samples.

Host packages: BUILD_PACKAGES plus generate_real.py's.  Root, Debian 12.

    sudo python3 samples/build_kernel_livepatch.py [SAMPLE ...] [--scratch DIR] [--jobs 2]

Work files go under ``cache_dir("real")`` (``--scratch``): ``klp/src`` (source, build tree),
``kernels/RELEASE/{vmlinuz,vmlinux,System.map,config,modules/*.ko}``, ``SAMPLE/`` (raw dumps).
Progress lines go to ``--status FILE`` as well when given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_kernel_510 as b510
import generate_real as gr

SCRIPT_DIR = Path(__file__).resolve().parent
OWN_MODULES = SCRIPT_DIR / "klp_modules"
SUITE = "bookworm-backports"
#: The source of the bpo12-6.12-* samples' binary kernel (6.12.95+deb12-s390x).
DEFAULT_VERSION = "6.12.95-1~bpo12+1"
LOCALVERSION = "-klp"
BUILD_PACKAGES = (*b510.BUILD_PACKAGES, "dwarves", "python3")  # pahole for BTF
MAKE = ["make", "ARCH=s390", "CROSS_COMPILE=s390x-linux-gnu-"]
TEST_MODULES = "tools/testing/selftests/livepatch/test_modules"


#: ``scripts/config`` changes on top of ``defconfig``; every other ``=m`` of defconfig is
#: turned off, so the only modules are the livepatch samples and the external ones.
DISABLE = b510._names(
    "NET DRM SOUND KVM VIRTUALIZATION BTRFS_FS XFS_FS EXT4_FS EXT2_FS EXT3_FS JBD2 OCFS2_FS "
    "GFS2_FS NFS_FS NFSD CIFS CEPH_FS FUSE_FS OVERLAY_FS SQUASHFS ISO9660_FS UDF_FS MSDOS_FS "
    "VFAT_FS NILFS2_FS F2FS_FS CONFIGFS_FS MD SCSI BLK_DEV_DM INFINIBAND VFIO VHOST "
    "CRYPTO_HW ZCRYPT PCI S390_HYPFS_FS ATA BLK_DEV_NBD BLK_DEV_RBD BLK_DEV_LOOP "
    "BLK_DEV_DRBD BLK_DEV_NULL_BLK BLK_DEV_RAM DASD DCSSBLK SCM_BLOCK ZRAM BLK_DEV_IO_TRACE "
    "SECURITY AUDIT CGROUPS NAMESPACES KEXEC CRASH_DUMP LOCK_STAT PROVE_LOCKING "
    "DEBUG_LOCK_ALLOC KASAN DEBUG_PAGEALLOC DEBUG_OBJECTS DEBUG_KMEMLEAK PROFILING "
    "S390_GUEST TN3270 TN3215 VMCP CMM MONWRITER S390_VMUR HMC_DRV SCLP_OFB TEST_BPF "
    "XZ_DEC_TEST WATCHDOG IMA EVM INTEGRITY KEYS BPF_JIT BPF_LSM BPF_EVENTS "
    "SYSTEM_DATA_VERIFICATION MODULE_SIG MODVERSIONS DEBUG_INFO_REDUCED DEBUG_INFO_SPLIT "
    "DEBUG_INFO_DWARF4 HZ_100 PREEMPT_NONE TORTURE_TEST RCU_TORTURE_TEST RCU_REF_SCALE_TEST "
    "FUNCTION_PROFILER FTRACE_SYSCALLS KUNIT RUNTIME_TESTING_MENU FAIL_FUNCTION "
    "SAMPLE_TRACE_PRINTK SAMPLE_FTRACE_DIRECT SAMPLE_FTRACE_DIRECT_MULTI SAMPLE_FTRACE_OPS "
    "LOCALVERSION_AUTO DEBUG_WX"
)
ENABLE = b510._names(
    "MODULES MODULE_UNLOAD KPROBES LIVEPATCH SAMPLES DYNAMIC_DEBUG DEBUG_FS DEBUG_FS_ALLOW_ALL "
    "DEBUG_INFO DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT BPF_SYSCALL DEBUG_INFO_BTF "
    "DEBUG_INFO_BTF_MODULES KALLSYMS KALLSYMS_ALL VMAP_STACK HZ_250 PREEMPT_VOLUNTARY "
    "MAGIC_SYSRQ PRINTK PRINTK_TIME DEVTMPFS BLK_DEV_INITRD RD_GZIP SCLP_TTY SCLP_CONSOLE "
    "SCLP_VT220_TTY SCLP_VT220_CONSOLE FTRACE FUNCTION_TRACER DYNAMIC_FTRACE "
    "FUNCTION_GRAPH_TRACER PROC_FS SYSFS TMPFS BINFMT_ELF BINFMT_SCRIPT TTY UNIX98_PTYS FUTEX "
    "EPOLL SIGNALFD SMP"
)
MODULAR = ("SAMPLE_LIVEPATCH",)
VALUES = {"HZ": "250", "NR_CPUS": "64"}
#: Options that must come out as set for the samples to mean what they claim.
REQUIRED = b510._names(
    "MODULES MODULE_UNLOAD LIVEPATCH DYNAMIC_DEBUG DEBUG_FS DEBUG_INFO DEBUG_INFO_BTF "
    "KALLSYMS_ALL VMAP_STACK HZ_250 PREEMPT_VOLUNTARY MAGIC_SYSRQ DEVTMPFS BLK_DEV_INITRD "
    "RD_GZIP SCLP_VT220_CONSOLE FUNCTION_GRAPH_TRACER HAVE_RELIABLE_STACKTRACE"
)


# --------------------------------------------------------------------------
# Scenarios: shell run by the guest's /init after the standard workload
# --------------------------------------------------------------------------

#: Shell functions every scenario uses.  ``bc_scenario_truth`` prints the guest's own view between
#: markers that ``parse_klp`` reads; generate_real's
#: /init calls it just before the sysrq-t traces.
SCENARIO_LIB = r"""
klp_wait() {    # klp_wait FILE VALUE SECONDS: wait until FILE reads VALUE
    n=0
    while [ "$(cat $1 2>/dev/null)" != "$2" ] && [ $n -lt $(($3 * 10)) ]; do
        usleep 100000; n=$((n + 1))
    done
    [ "$(cat $1 2>/dev/null)" = "$2" ] || echo "BACKCHAIN-KLP-TIMEOUT $1 != $2"
}
klp_step() {
    echo "BACKCHAIN-KLP-STEP $*"
    sh -c "$*" || echo "BACKCHAIN-KLP-FAILED $*"
}
bc_scenario_truth() {
    echo "BACKCHAIN-KLP-BEGIN"
    for p in /sys/kernel/livepatch/*; do
        [ -d "$p" ] || continue
        force=$(cat $p/force 2>/dev/null || echo -)      # write-only: reads fail
        echo "BCKLP-PATCH ${p##*/} enabled=$(cat $p/enabled)" \
            "transition=$(cat $p/transition) replace=$(cat $p/replace) force=$force"
        for o in $p/*/; do
            [ -f "$o/patched" ] || continue
            o=${o%/}
            echo "BCKLP-OBJECT ${p##*/} ${o##*/} patched=$(cat $o/patched)"
            for fn in $o/*,*; do
                [ -d "$fn" ] && echo "BCKLP-FUNC ${p##*/} ${o##*/} ${fn##*/}"
            done
        done
    done
    for f in /proc/[0-9]*/task/[0-9]*/patch_state; do
        t=${f%/patch_state}
        read -r s < "$f" 2>/dev/null || continue
        read -r c < "$t/comm" 2>/dev/null
        echo "BCKLP-STATE ${t##*/} $s $c"
    done
    echo "BACKCHAIN-KLP-CMDLINE $(cat /proc/cmdline)"
    echo "BACKCHAIN-KLP-END"
}
mount -t debugfs debugfs /sys/kernel/debug
dmesg -n 8
echo 'file kernel/livepatch/transition.c +p' > /sys/kernel/debug/dynamic_debug/control
echo "BACKCHAIN-KLP-DYNDBG" \
    "$(grep -c 'livepatch/transition.c.*=p' /sys/kernel/debug/dynamic_debug/control)"
"""


@dataclasses.dataclass(frozen=True)
class Scenario:
    sample: gr.SampleSpec
    #: shell run after the workload, before the truth; ends in the state to dump
    script: str
    #: modules (file stems) the initramfs carries to /lib/klp
    modules: tuple[str, ...]
    what: str


def _spec(name: str, description: str) -> gr.SampleSpec:
    return gr.SampleSpec(name, "6.12", "busy", 128, 2, description)


SCENARIOS = {
    s.sample.name: s
    for s in [
        Scenario(
            _spec(
                "klp-6.12-stalled",
                "6.12 rebuilt with livepatch: test_klp_callbacks_busy block_transition=Y, then "
                "test_klp_callbacks_demo; the patching transition stalls on the busy work "
                "function, dumped after the kernel has signalled the remaining tasks",
            ),
            r"""
klp_step insmod /lib/klp/test_klp_callbacks_busy.ko block_transition=Y
sleep 1
klp_step insmod /lib/klp/test_klp_callbacks_demo.ko
klp_wait /sys/kernel/livepatch/test_klp_callbacks_demo/transition 1 10
sleep 20            # > SIGNALS_TIMEOUT (15) retries, one a second: the kernel has signalled
""",
            ("test_klp_callbacks_busy", "test_klp_callbacks_demo"),
            "patching transition stalled: kworker sleeping in busymod_work_func",
        ),
        Scenario(
            _spec(
                "klp-6.12-reversed",
                "6.12 rebuilt with livepatch: bcklp_patch stalls on bcklp_old (sleeping in "
                "the original bcklp_sleep_func), bcklp_new enters the new function, then "
                "'echo 0 > enabled' reverses the transition, which stalls on bcklp_new",
            ),
            r"""
klp_step insmod /lib/klp/bcklp_target.ko
sleep 1
klp_step insmod /lib/klp/bcklp_patch.ko
klp_wait /sys/kernel/livepatch/bcklp_patch/transition 1 10
klp_wait /proc/2/patch_state 1 20     # kthreadd switched: its new children start patched
klp_step 'echo 1 > /sys/module/bcklp_target/parameters/start_new'
sleep 2
klp_step 'echo 0 > /sys/kernel/livepatch/bcklp_patch/enabled'
sleep 20            # > SIGNALS_TIMEOUT retries of the unpatching transition
""",
            ("bcklp_target", "bcklp_patch"),
            "unpatching (reversed) transition stalled: bcklp_new sleeping in the new function",
        ),
        Scenario(
            _spec(
                "klp-6.12-stacked",
                "6.12 rebuilt with livepatch: test_klp_livepatch, then the kernel's "
                "livepatch-sample, both replacing cmdline_proc_show (its func_stack has two "
                "entries, livepatch_sample's on top); both settled, no transition",
            ),
            r"""
klp_step insmod /lib/klp/test_klp_livepatch.ko
klp_wait /sys/kernel/livepatch/test_klp_livepatch/transition 0 30
klp_step insmod /lib/klp/livepatch-sample.ko
klp_wait /sys/kernel/livepatch/livepatch_sample/transition 0 30
sleep 1
""",
            ("test_klp_livepatch", "livepatch-sample"),
            "two patches on cmdline_proc_show, no transition",
        ),
    ]
}


def log(msg: str) -> None:
    gr.log(msg)


class Status:
    """Appends timestamped lines to a status file that other people read while this runs."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def say(self, msg: str) -> None:
        log(msg)
        if self.path:
            with open(self.path, "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}Z {msg}\n")


# --------------------------------------------------------------------------
# Source and build
# --------------------------------------------------------------------------


class SourceApt(gr.PrivateApt):
    """bookworm-backports' Sources index through a private apt configuration."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, f"{SUITE}-src")
        uri, key = gr.debian_mirror()
        keyring = key or "/usr/share/keyrings/debian-archive-keyring.gpg"
        self.sources.write_text(f"deb-src [signed-by={keyring}] {uri} {SUITE} main\n")
        i = self.opts.index("APT::Architectures::=s390x")
        del self.opts[i - 1 : i + 1]

    def check_architecture(self) -> None:
        pass  # a Sources index has no architectures

    def versions(self) -> list[str]:
        self.update()
        text = self.cache("showsrc", "linux")
        return sorted(set(re.findall(r"^Version: (6\.12\.\S+)$", text, re.M)), key=gr.version_key)

    def source(self, dest: Path, version: str) -> None:
        gr.run(["apt-get", *self.opts, "source", "--download-only", f"linux={version}"],
               cwd=dest, stdout=subprocess.DEVNULL)  # fmt: skip


def fetch_source(scratch: Path, version: str, timer: gr.Timer) -> Path:
    src = scratch / "klp" / "src"
    tree = src / f"linux-{version.split('-')[0]}"
    if (tree / "Makefile").exists():
        return tree
    apt = SourceApt(scratch / "klp")
    versions = apt.versions()
    if version not in versions:
        raise SystemExit(f"{SUITE} has no linux {version} source; it has: {' '.join(versions)}")
    src.mkdir(parents=True, exist_ok=True)
    timer.run(f"download linux {version} source", apt.source, src, version)
    (dsc,) = src.glob(f"linux_{version}.dsc")
    timer.run("dpkg-source -x", gr.run, ["dpkg-source", "--no-check", "-x", dsc.name, tree.name],
              cwd=src, stdout=subprocess.DEVNULL)  # fmt: skip
    return tree


def configure(tree: Path, config: Path) -> None:
    """Write the reduced configuration to ``config`` (normally ``tree/.config``)."""
    env = {**os.environ, "KCONFIG_CONFIG": str(config)}
    gr.run([*MAKE, "defconfig"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    text = re.sub(r"^CONFIG_(\w+)=m$", r"# CONFIG_\1 is not set", config.read_text(), flags=re.M)
    config.write_text(text)
    args: list[str] = ["--file", str(config)]
    for name in DISABLE:
        args += ["-d", name]
    for name in ENABLE:
        args += ["-e", name]
    for name in MODULAR:
        args += ["-m", name]
    for name, value in VALUES.items():
        args += ["--set-val", name, value]
    args += ["--set-str", "LOCALVERSION", LOCALVERSION]
    gr.run(["scripts/config", *args], cwd=tree)
    gr.run([*MAKE, "olddefconfig"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    text = config.read_text()
    missing = [n for n in REQUIRED if f"\nCONFIG_{n}=y\n" not in text]
    modular = sorted(set(re.findall(r"^CONFIG_(\w+)=m$", text, re.M)) - set(MODULAR))
    if missing or "\nCONFIG_SAMPLE_LIVEPATCH=m\n" not in text:
        raise SystemExit(f"config: missing {missing} (or SAMPLE_LIVEPATCH=m)")
    if modular:
        log(f"  config: also modular: {' '.join(modular)}")


def build(tree: Path, jobs: int, timer: gr.Timer) -> None:
    if not (tree / ".config").exists():
        configure(tree, tree / ".config")
    timer.run("make bzImage modules", gr.run, [*MAKE, f"-j{jobs}", "bzImage", "modules"],
              cwd=tree, stdout=subprocess.DEVNULL)  # fmt: skip


def build_external(tree: Path, jobs: int, timer: gr.Timer) -> dict[str, Path]:
    """Build the kernel's livepatch test modules and our own pair; name -> .ko."""
    own = tree.parent / "bcklp"
    # copy2 keeps the sources' times: make rebuilds only what changed
    shutil.copytree(OWN_MODULES, own, dirs_exist_ok=True, copy_function=shutil.copy2)
    kos: dict[str, Path] = {}
    for folder in (tree / TEST_MODULES, own):
        timer.run(f"make M={folder.name}", gr.run, [*MAKE, f"-j{jobs}", f"M={folder}", "modules"],
                  cwd=tree, stdout=subprocess.DEVNULL)  # fmt: skip
        kos.update((p.stem, p) for p in sorted(folder.glob("*.ko")))
    for p in sorted((tree / "samples" / "livepatch").glob("*.ko")):
        kos[p.stem] = p
    return kos


def install(tree: Path, version: str, scratch: Path, kos: dict[str, Path]) -> gr.Kernel:
    """build_kernel_510's kernel folder, plus ``modules/NAME.ko``."""
    kernel = b510.install(tree, version, scratch)
    (kernel.dir / "modules").mkdir(exist_ok=True)
    for name, ko in kos.items():
        shutil.copyfile(ko, kernel.dir / "modules" / f"{name}.ko")
    return kernel


# --------------------------------------------------------------------------
# Console: the guest's own livepatch view
# --------------------------------------------------------------------------

KLP_DEBUG = re.compile(
    r"livepatch: klp_try_switch_task: (?P<comm>.+):(?P<pid>\d+) "
    r"(?P<what>is running|has an unreliable stack|is sleeping on function (?P<func>\S+))$"
)
#: The kernel's words -> the cause recorded in facts.json.
CAUSES = {"is running": "running", "has an unreliable stack": "unreliable"}
STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]\s?")
KLP_NOTICE = re.compile(r"livepatch: (?:'[^']+': |signaling remaining tasks|enabling patch)")


def parse_klp(text: str) -> dict:
    """The guest's livepatch view: sysfs, patch_state per task, the kernel's own lines.

    ``klp_debug_last_retry`` holds the kernel's ``klp_try_switch_task`` lines of its last
    retry before the dump (retries run once a second; lines less than half a second apart
    belong to the same one)."""
    patches: dict[str, dict] = {}
    states: list[dict] = []
    steps: list[str] = []
    cmdline = None
    inside = False
    debug: list[dict] = []
    notices: list[str] = []
    for raw in text.splitlines():
        m = STAMP.match(raw)
        line = (raw[m.end() :] if m else raw).rstrip()
        if line.startswith("BACKCHAIN-KLP-STEP "):
            steps.append(line.split(" ", 1)[1])
        elif line == "BACKCHAIN-KLP-BEGIN":
            inside, patches, states = True, {}, []
        elif line == "BACKCHAIN-KLP-END":
            inside = False
        elif inside and line.startswith("BCKLP-PATCH "):
            name, *fields = line.split()[1:]
            values = dict(f.split("=", 1) for f in fields)
            patches[name] = {"name": name, "objects": []}
            patches[name].update((k, None if v == "-" else int(v)) for k, v in values.items())
        elif inside and line.startswith("BCKLP-OBJECT "):
            _, patch, obj, patched = line.split()
            patches[patch]["objects"].append(
                {"name": obj, "patched": int(patched.split("=", 1)[1]), "functions": []}
            )
        elif inside and line.startswith("BCKLP-FUNC "):
            _, patch, obj, func = line.split()
            name, _, sympos = func.rpartition(",")
            objects = patches[patch]["objects"]
            objects[-1]["functions"].append({"name": name, "sympos": int(sympos)})
        elif inside and line.startswith("BCKLP-STATE "):
            _, pid, state, *comm = line.split(None, 3)
            states.append({"pid": int(pid), "patch_state": int(state), "comm": "".join(comm)})
        elif inside and line.startswith("BACKCHAIN-KLP-CMDLINE "):
            cmdline = line.split(" ", 1)[1]
        elif d := KLP_DEBUG.search(line):
            debug.append(
                {
                    "time": float(m.group(1)) if m else None,
                    "pid": int(d.group("pid")),
                    "comm": d.group("comm"),
                    "cause": "sleeping" if d.group("func") else CAUSES[d.group("what")],
                    "function": d.group("func"),
                    "line": line,
                }
            )
        elif KLP_NOTICE.search(line):
            notices.append(line)
    retries: list[list[dict]] = []
    for entry in debug:
        last = retries[-1][-1]["time"] if retries else None
        if last is not None and entry["time"] is not None and entry["time"] - last < 0.5:
            retries[-1].append(entry)
        else:
            retries.append([entry])
    return {
        "patches": list(patches.values()),
        "patch_state": states,
        "steps": steps,
        "cmdline": cmdline,
        "kernel_lines": notices,
        "klp_debug_retries": len(retries),
        "klp_debug_last_retry": retries[-1] if retries else [],
    }


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def make_sample(
    sc: Scenario,
    kernel: gr.Kernel,
    busybox: Path,
    bb_version: str,
    args: argparse.Namespace,
    status: Status,
) -> None:
    name = sc.sample.name
    timer = gr.Timer()
    work = gr.work_folder(args.scratch, name, kernel)
    d, f = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644
    extra = [("lib", d, b""), ("lib/klp", d, b"")]
    extra += [(f"lib/klp/{m}.ko", f, (kernel.dir / "modules" / f"{m}.ko").read_bytes())
              for m in sc.modules]  # fmt: skip
    extra.append(("bcscenario", f, (SCENARIO_LIB + sc.script).encode()))
    initrd = work / "initrd.cpio.gz"
    gr.build_initramfs(busybox, initrd, extra=tuple(extra))
    info = timer.run(f"{name}: boot+dump", gr.boot_and_dump, kernel, initrd, sc.sample, work,
                     timer, args.boot_timeout)  # fmt: skip
    status.say(f"{name}: raw dump {work / 'vmcore.elf'} (+ vmcore.kdump-zlib), guest console "
               f"(truth) {work / 'console.log'}")  # fmt: skip
    out = args.out / name
    timer.run(f"{name}: package", gr.package_sample, sc.sample, kernel, work, out, info, timer,
              bb_version, args.zstd_level)  # fmt: skip
    facts = json.loads((out / "facts.json").read_text())
    console = (out / "console.log").read_text()
    facts["livepatch"] = parse_klp(console)
    gcc = gr.output(["s390x-linux-gnu-gcc", "--version"]).splitlines()[0]
    prov = facts["provenance"]
    prov["kernel_package"] = (
        f"rebuilt from Debian source package linux {kernel.version} ({SUITE}) with {gcc}; "
        "reduced config with LIVEPATCH (see config.txt and samples/build_kernel_livepatch.py); "
        "not Debian's binary"
    )
    prov["dbg_package"] = None
    prov["scenario"] = sc.script.strip().splitlines()
    prov["timings_s"] = timer.steps
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    cfg = (out / "config.txt").read_text().splitlines()
    cfg[0] = (
        f"# selected lines of the .config of {kernel.release} (rebuilt from linux {kernel.version})"
    )
    (out / "config.txt").write_text("\n".join(cfg) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    status.say(f"{name}: bundle {out} ({size / 1e6:.1f} MB); truth in {out / 'facts.json'} "
               f"(livepatch: {len(facts['livepatch']['patches'])} patches, last retry "
               f"{len(facts['livepatch']['klp_debug_last_retry'])} lines)")  # fmt: skip
    if size > 10 * 2**20:
        log(f"WARNING: {name} bundle exceeds 10 MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples", nargs="*", default=list(SCENARIOS), help=", ".join(SCENARIOS))
    ap.add_argument("--scratch", type=Path, default=gr.DEFAULT_SCRATCH)
    ap.add_argument("--out", type=Path, default=gr.DEFAULT_OUT)
    ap.add_argument("--version", default=DEFAULT_VERSION, help="Debian linux source version")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--boot-timeout", type=float, default=300)
    ap.add_argument("--zstd-level", type=int, default=19)
    ap.add_argument("--status", type=Path, help="also append progress lines to this file")
    ap.add_argument("--build-only", action="store_true", help="build and install, no dumps")
    ap.add_argument("--skip-install", action="store_true", help="do not apt-get install")
    args = ap.parse_args(argv)
    unknown = [s for s in args.samples if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown sample {unknown[0]}; known: {', '.join(SCENARIOS)}")
    if os.geteuid() != 0:
        ap.error("must run as root (apt-get)")
    status = Status(args.status)
    timer = gr.Timer()
    args.scratch.mkdir(parents=True, exist_ok=True)
    if not args.skip_install:
        timer.run("host packages", gr.ensure_host_packages)
        timer.run("build packages", b510.ensure_build_packages, BUILD_PACKAGES)
        timer.run("add s390x arch + apt-get update", gr.ensure_s390x_arch)  # busybox-static
    tree = fetch_source(args.scratch, args.version, timer)
    build(tree, args.jobs, timer)
    kos = build_external(tree, args.jobs, timer)
    kernel = install(tree, args.version, args.scratch, kos)
    status.say(f"kernel {kernel.release}: vmlinux (DWARF, BTF) {kernel.vmlinux}")
    status.say(f"kernel {kernel.release}: System.map {kernel.system_map}")
    status.say(f"kernel {kernel.release}: vmlinuz {kernel.vmlinuz}, config {kernel.config}")
    status.say(
        f"kernel {kernel.release}: modules {kernel.dir / 'modules'}/*.ko ({' '.join(sorted(kos))})"
    )
    if args.build_only:
        log(f"built {kernel.release}; timings {timer.steps}")
        return 0
    busybox, bb_version = timer.run("busybox", gr.fetch_busybox, args.scratch)
    for name in args.samples:
        make_sample(SCENARIOS[name], kernel, busybox, bb_version, args, status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
