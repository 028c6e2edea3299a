"""Convert any dump to an ELF vmcore, and write kdump-compressed and s390 files.

:func:`convert_to_elf` streams memory range by range in chunks of a few MiB (never the whole
dump in memory) and keeps the dump's notes, or, for the s390 formats, synthesizes the
per-CPU notes the kernel would write from the lowcore save areas.

:func:`write_kdump` and :func:`write_s390` exist for round-trip tests and benchmarks: they
make small, valid files of those formats from any :class:`~parsers.dumps.dumpfile.DumpFile`.
"""

from __future__ import annotations

import datetime
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from parsers.dumps.cpustate import CpuRegisters, cpu_registers_from_notes
from parsers.dumps.elfcore import group_cpu_notes
from parsers.dumps.physmem import MemoryRange
from parsers.dumps.s390dump import (
    END_MARKER,
    ENTRY_UNCOMPRESSED,
    HDR_SIZE,
    MAX_ENTRIES,
    S390_EXT_MAGIC,
    S390_MAGIC,
    SEGMENT_HDR_SIZE,
    datetime_to_tod,
)
from parsers.errors import DumpError
from parsers.s390.layouts import (
    NT_PRFPREG,
    NT_PRSTATUS,
    NT_S390_CTRS,
    NT_S390_PREFIX,
    NT_S390_TIMER,
    NT_S390_TODCMP,
    NT_S390_TODPREG,
    NT_S390_VXRS_HIGH,
    NT_S390_VXRS_LOW,
)
from parsers.s390.structs import build_note_desc, build_prstatus
from parsers.write.elfwriter import NoteSpec, build_elf_header, build_phdr, encode_note
from parsers.write.origin import ORIGIN_NOTE

Progress = Callable[[int, int], None]
CHUNK = 4 << 20
PAGE = 4096
#: ELF e_phnum is 16 bits (PN_XNUM extension not written here).
MAX_PHDRS = 0xFFFE


# -- registers --------------------------------------------------------------------------------
def dump_cpu_registers(dump: Any) -> list[CpuRegisters]:
    """The dump's CPU registers: from the s390 save areas, else from the ELF notes."""
    if dump.cpu_registers is not None:
        return list(dump.cpu_registers)
    return [
        cpu_registers_from_notes(i, group, dump.path)
        for i, group in enumerate(group_cpu_notes(dump.notes))
    ]


def cpu_notes(cpu: CpuRegisters) -> list[NoteSpec]:
    """The notes the kernel writes for one CPU (crash_dump.c order), from its registers."""
    notes = [
        NoteSpec(
            "CORE",
            NT_PRSTATUS,
            build_prstatus(
                pid=cpu.cpu_id, psw=cpu.psw, gprs=cpu.gprs, acrs=cpu.acrs, orig_gpr2=cpu.orig_gpr2
            ),
        ),
        NoteSpec(
            "CORE",
            NT_PRFPREG,
            build_note_desc(NT_PRFPREG, fpc=cpu.fpc or 0, fprs=list(cpu.fprs or (0,) * 16)),
        ),
        NoteSpec("LINUX", NT_S390_TIMER, build_note_desc(NT_S390_TIMER, timer=cpu.timer or 0)),
        NoteSpec("LINUX", NT_S390_TODCMP, build_note_desc(NT_S390_TODCMP, todcmp=cpu.todcmp or 0)),
        NoteSpec(
            "LINUX", NT_S390_TODPREG, build_note_desc(NT_S390_TODPREG, todpreg=cpu.todpreg or 0)
        ),
        NoteSpec(
            "LINUX", NT_S390_CTRS, build_note_desc(NT_S390_CTRS, crs=list(cpu.crs or (0,) * 16))
        ),
    ]
    if cpu.prefix is not None:
        notes.append(
            NoteSpec("LINUX", NT_S390_PREFIX, build_note_desc(NT_S390_PREFIX, prefix=cpu.prefix))
        )
    return notes


def dump_notes(dump: Any, origin: str | None = None) -> list[NoteSpec]:
    """Notes for an ELF copy of ``dump``: its own, or synthesized from its registers; with
    ``origin``, a ``BACKCHAIN`` note saying what it was converted from."""
    if dump.notes:
        notes = [NoteSpec(n.name, n.type, n.desc) for n in dump.notes if n.name != ORIGIN_NOTE]
    else:
        notes = [n for cpu in (dump.cpu_registers or ()) for n in cpu_notes(cpu)]
    text = dump.vmcoreinfo_text
    if text and not any(n.name == "VMCOREINFO" for n in notes):
        notes.append(NoteSpec("VMCOREINFO", 0, text.encode()))
    if origin:
        notes.append(NoteSpec(ORIGIN_NOTE, 1, f"origin={origin}".encode()))
    return notes


# -- helpers ----------------------------------------------------------------------------------
def _stream(dump: Any, start: int, end: int, chunk: int = CHUNK) -> Iterator[tuple[int, bytes]]:
    pos = start
    while pos < end:
        n = min(chunk, end - pos)
        yield pos, dump.read(pos, n)
        pos += n


def _open_out(out_path: str | os.PathLike[str]) -> tuple[str, IO[bytes]]:
    tmp = f"{os.fspath(out_path)}.part"
    try:
        return tmp, open(tmp, "wb")
    except OSError as exc:
        raise DumpError(f"cannot write: {exc.strerror}", os.fspath(out_path)) from None


def _finish(tmp: str, f: IO[bytes], out_path: str | os.PathLike[str], ok: bool) -> None:
    f.close()
    if ok:
        os.replace(tmp, out_path)
    else:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# -- ELF --------------------------------------------------------------------------------------
def convert_to_elf(
    dump: Any,
    out_path: str | os.PathLike[str],
    progress: Progress | None = None,
    notes: Sequence[NoteSpec] | None = None,
    origin: str | None = None,
) -> None:
    """Write ``dump`` as an s390x ELF vmcore (one PT_LOAD per memory range).

    The file is written beside ``out_path`` as ``.part`` and renamed when complete.

    Args:
        dump: any opened dump (:class:`parsers.dumps.dumpfile.DumpFile`).
        out_path: the ELF file to write (replaced if it exists).
        progress: called with (bytes done, bytes total).
        notes: the notes to write instead of the dump's own (:func:`dump_notes`).
        origin: recorded in a ``BACKCHAIN`` note (e.g. "kdump dump.kdump").

    Raises:
        DumpError: the dump cannot be read, or the output cannot be written.
    """
    ranges = [r for r in dump.ranges if r.size]
    if len(ranges) >= MAX_PHDRS:
        raise DumpError(
            f"{len(ranges)} memory ranges: too many for one ELF file", os.fspath(out_path)
        )
    if notes is None:
        notes = dump_notes(dump, origin)
    elif origin:
        notes = [*notes, NoteSpec(ORIGIN_NOTE, 1, f"origin={origin}".encode())]
    note_blob = b"".join(encode_note(n) for n in notes)
    phnum = 1 + len(ranges)
    head_size = 64 + 56 * phnum
    offset = (head_size + len(note_blob) + PAGE - 1) & ~(PAGE - 1)
    headers = [build_phdr("PT_NOTE", head_size, 0, len(note_blob))]
    offsets = []
    for r in ranges:
        headers.append(build_phdr("PT_LOAD", offset, r.start, r.size))
        offsets.append(offset)
        offset += (r.size + PAGE - 1) & ~(PAGE - 1)
    total = sum(r.size for r in ranges)
    done = 0
    tmp, f = _open_out(out_path)
    ok = False
    try:
        f.write(build_elf_header(phnum) + b"".join(headers) + note_blob)
        for r, off in zip(ranges, offsets, strict=True):
            f.seek(off)
            for _, data in _stream(dump, r.start, r.end):
                f.write(data)
                done += len(data)
                if progress:
                    progress(done, total)
        f.truncate(offset)
        ok = True
    except OSError as exc:
        raise DumpError(f"cannot write: {exc.strerror}", os.fspath(out_path)) from None
    finally:
        _finish(tmp, f, out_path, ok)
    if progress and not total:
        progress(0, 0)


# -- kdump-compressed -------------------------------------------------------------------------
def _page_runs(ranges: Sequence[MemoryRange]) -> list[tuple[int, int]]:
    """Page-number runs covering the ranges."""
    runs: list[tuple[int, int]] = []
    for r in ranges:
        s, e = r.start // PAGE, (r.end + PAGE - 1) // PAGE
        if runs and runs[-1][1] >= s:
            runs[-1] = (runs[-1][0], max(runs[-1][1], e))
        else:
            runs.append((s, e))
    return runs


def _read_page(dump: Any, pfn: int, ranges: Sequence[MemoryRange]) -> bytes:
    a = pfn * PAGE
    try:
        return bytes(dump.read(a, PAGE))
    except DumpError:
        buf = bytearray(PAGE)  # a page only partly in the dump: the rest is zero
        for r in ranges:
            s, e = max(r.start, a), min(r.end, a + PAGE)
            if s < e:
                buf[s - a : e - a] = dump.read(s, e - s)
        return bytes(buf)


def _compressor(compression: str) -> tuple[int, Callable[[bytes], bytes]]:
    if compression == "zlib":
        return 0x1, lambda d: zlib.compress(d, 1)
    if compression == "lzo":
        import lzo

        return 0x2, lambda d: bytes(lzo.compress(d, 1, False))
    if compression == "snappy":
        import cramjam

        return 0x4, lambda d: bytes(cramjam.snappy.compress_raw(d))
    if compression == "zstd":
        import zstandard

        cctx = zstandard.ZstdCompressor(level=1)
        return 0x20, cctx.compress
    if compression == "none":
        return 0, lambda d: d
    raise ValueError(f"unknown compression {compression!r}")


class _Out:
    """Positioned writes to a plain file, or records of a flattened file."""

    def __init__(self, f: IO[bytes], flattened: bool) -> None:
        self.f = f
        self.flattened = flattened
        if flattened:
            f.write(b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1))
            f.write(b"\0" * (4096 - 32))

    def write_at(self, offset: int, data: bytes) -> None:
        if self.flattened:
            self.f.write(struct.pack(">qq", offset, len(data)))
        else:
            self.f.seek(offset)
        self.f.write(data)

    def close(self) -> None:
        if self.flattened:
            self.f.write(struct.pack(">qq", -1, -1))


def write_kdump(
    dump: Any,
    out: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    compression: str = "zlib",
    flattened: bool = False,
    dump_level: int = 1,
    exclude: Callable[[int], bool] | None = None,
    release: str = "",
) -> None:
    """Write ``dump`` as a makedumpfile kdump-compressed file (header version 6).

    Args:
        dump: the source dump.
        out: the file, or several files to write a split dump (pfn range cut evenly).
        compression: "zlib", "lzo", "snappy", "zstd" or "none".
        flattened: write the flattened (``makedumpfile -F``) form.
        dump_level: recorded in the sub-header.
        exclude: pfn -> True to leave a page of RAM out (as a dump level would).
        release: utsname release to record.
    """
    outs = [out] if isinstance(out, (str, os.PathLike)) else list(out)
    flag, compress = _compressor(compression)
    ranges = [r for r in dump.ranges if r.size]
    runs = _page_runs(ranges)
    max_mapnr = max((e for _, e in runs), default=1)
    bs = PAGE
    nbytes = (max_mapnr + 7) // 8
    bm_blocks = (nbytes + bs - 1) // bs
    bitmap1 = bytearray(bm_blocks * bs)
    for s, e in runs:
        for pfn in range(s, e):
            bitmap1[pfn >> 3] |= 1 << (pfn & 7)
    notes = b"".join(encode_note(n) for n in dump_notes(dump))
    vmci = (dump.vmcoreinfo_text or "").encode()
    if not release:
        found = re.search(rb"^OSRELEASE=(.*)$", vmci, re.M)
        release = found.group(1).decode("utf-8", "replace") if found else ""
    cut = [max_mapnr * i // len(outs) for i in range(len(outs) + 1)]
    for part, path in enumerate(outs):
        lo, hi = cut[part], cut[part + 1]
        split = len(outs) > 1
        bitmap2 = bytearray(bm_blocks * bs)
        pfns = []
        for s, e in runs:
            for pfn in range(max(s, lo), min(e, hi)):
                if exclude is None or not exclude(pfn):
                    bitmap2[pfn >> 3] |= 1 << (pfn & 7)
                    pfns.append(pfn)
        sub_off = bs
        vmci_off = sub_off + 0x68
        note_off = vmci_off + len(vmci)
        sub_blocks = (0x68 + len(vmci) + len(notes) + bs - 1) // bs
        bm_off = (1 + sub_blocks) * bs
        desc_off = bm_off + 2 * bm_blocks * bs
        data_off = desc_off + 24 * len(pfns)
        header = struct.pack(
            ">8si390s6xqqIiiIIIIIIi",
            b"KDUMP   ",
            6,
            b"Linux".ljust(65, b"\0")
            + b"".ljust(65, b"\0")
            + release.encode()[:64].ljust(65, b"\0")
            + b"".ljust(65, b"\0")
            + b"s390x".ljust(65, b"\0")
            + b"".ljust(65, b"\0"),
            0,
            0,
            flag,
            bs,
            sub_blocks,
            2 * bm_blocks,
            min(max_mapnr, 0xFFFFFFFF),
            0,
            0,
            0,
            0,
            len(dump_cpu_registers(dump)) if part == 0 else 0,
        )
        sub = struct.pack(
            ">QiiQQqQqQqQQQQ",
            0,
            dump_level,
            1 if split else 0,
            lo if split else 0,
            hi if split else 0,
            vmci_off if vmci else 0,
            len(vmci),
            note_off if notes else 0,
            len(notes),
            0,
            0,
            lo if split else 0,
            hi if split else 0,
            max_mapnr,
        )
        tmp, f = _open_out(path)
        ok = False
        try:
            w = _Out(f, flattened)
            w.write_at(0, header.ljust(bs, b"\0"))
            w.write_at(sub_off, (sub + vmci + notes).ljust(sub_blocks * bs, b"\0"))
            w.write_at(bm_off, bytes(bitmap1) + bytes(bitmap2))
            descs = bytearray()
            pos = data_off
            zero_at, zero_size, zero_flags = -1, 0, 0
            for pfn in pfns:
                page = _read_page(dump, pfn, ranges)
                if page.count(0) == PAGE and zero_at >= 0:  # share one zero page
                    descs += struct.pack(">qIIQ", zero_at, zero_size, zero_flags, 0)
                    continue
                packed = compress(page) if flag else page
                flags = flag
                if len(packed) >= PAGE:
                    packed, flags = page, 0
                w.write_at(pos, packed)
                descs += struct.pack(">qIIQ", pos, len(packed), flags, 0)
                if page.count(0) == PAGE:
                    zero_at, zero_size, zero_flags = pos, len(packed), flags
                pos += len(packed)
            w.write_at(desc_off, bytes(descs))
            w.close()
            ok = True
        except OSError as exc:
            raise DumpError(f"cannot write: {exc.strerror}", os.fspath(path)) from None
        finally:
            _finish(tmp, f, path, ok)


# -- s390 / s390_ext --------------------------------------------------------------------------
# Store-status save area in the absolute lowcore (z/Architecture Principles of Operation;
# arch/s390/include/asm/lowcore.h, the same in every 64-bit kernel).
_SA_FPRS, _SA_GPRS, _SA_PSW = 0x1200, 0x1280, 0x1300
_SA_PREFIX, _SA_FPC, _SA_TODPREG, _SA_TIMER, _SA_CKC = 0x1318, 0x131C, 0x1324, 0x1328, 0x1330
_SA_ACRS, _SA_CRS = 0x1340, 0x1380
#: lowcore.vector_save_area_addr (mcesad): where the stand-alone dumper (zipl stage2dump.c)
#: and zgetdump -f s390 store V0-V31 (512 bytes), if it is non-zero and 1 KiB aligned.
_LC_VX_SA, _VX_SA_SIZE = 0x11B0, 512


def _vector_save_area(dump: Any, cpu: CpuRegisters, notes: Sequence[Any]) -> tuple[int, bytes]:
    """(address, bytes) of the CPU's vector registers in its vector save area, or (0, b"")."""
    low = next((n.desc for n in notes if n.type == NT_S390_VXRS_LOW), None)
    high = next((n.desc for n in notes if n.type == NT_S390_VXRS_HIGH), None)
    if cpu.prefix is None or (low is None and high is None):
        return 0, b""
    try:
        (addr,) = struct.unpack(">Q", dump.read(cpu.prefix + _LC_VX_SA, 8))
        dump.read(addr, _VX_SA_SIZE)
    except DumpError:
        return 0, b""
    if not addr or addr % 1024:
        return 0, b""
    low = (low or b"").ljust(128, b"\0")
    fprs = cpu.fprs or (0,) * 16
    v0_15 = b"".join(struct.pack(">Q", fprs[i]) + low[8 * i : 8 * i + 8] for i in range(16))
    return addr, v0_15 + (high or b"").ljust(256, b"\0")[:256]


def _save_area_patches(cpus: Sequence[CpuRegisters], dump: Any = None) -> dict[int, bytes]:
    """absolute address -> bytes: each CPU's registers in its lowcore save area.

    With ``dump``, also each CPU's vector registers (from its NT_S390_VXRS_* notes) in the
    vector save area its lowcore points to, as zgetdump and the stand-alone dumper store them.
    """
    patches: dict[int, bytes] = {}
    groups = group_cpu_notes(dump.notes) if dump is not None and dump.notes else []
    for cpu in cpus:
        if dump is not None and cpu.index < len(groups):
            addr, vx = _vector_save_area(dump, cpu, groups[cpu.index])
            if vx:
                patches[addr] = vx
        if cpu.prefix is None:
            continue
        p = cpu.prefix
        patches[p + _SA_FPRS] = struct.pack(">16Q", *(cpu.fprs or (0,) * 16))
        patches[p + _SA_GPRS] = struct.pack(">16Q", *cpu.gprs)
        patches[p + _SA_PSW] = struct.pack(">QQ", cpu.psw.mask, cpu.psw.addr)
        patches[p + _SA_PREFIX] = struct.pack(">II", p, cpu.fpc or 0)
        patches[p + _SA_TODPREG] = struct.pack(">IQQ", cpu.todpreg or 0, cpu.timer or 0, 0)
        patches[p + _SA_CKC] = struct.pack(">Q", cpu.todcmp or 0)
        patches[p + _SA_ACRS] = struct.pack(">16I", *cpu.acrs)
        patches[p + _SA_CRS] = struct.pack(">16Q", *(cpu.crs or (0,) * 16))
    return patches


def _patched(data: bytes, start: int, patches: dict[int, bytes]) -> bytes:
    end = start + len(data)
    hits = [(a, b) for a, b in patches.items() if a < end and a + len(b) > start]
    if not hits:
        return data
    buf = bytearray(data)
    for a, b in hits:
        s, e = max(a, start), min(a + len(b), end)
        buf[s - start : e - start] = b[s - a : e - a]
    return bytes(buf)


def write_s390(
    dump: Any,
    out: str | os.PathLike[str],
    extended: bool = True,
    compress: bool = True,
    entry_size: int = 1 << 20,
    block_size: int = 4096,
    when: datetime.datetime | None = None,
) -> None:
    """Write ``dump`` in the zipl stand-alone format "s390" or "s390_ext".

    The CPU registers are stored into the save areas of the CPUs' lowcores, and vector
    registers into the vector save areas the lowcores point to (as zgetdump does when it
    converts to s390); the lowcores are listed in ``lc_vec``.

    Args:
        dump: the source dump; memory outside its ranges is written as zeros ("s390") or
            left out ("s390_ext").
        out: the file to write.
        extended: "s390_ext" (segments) instead of "s390" (one memory image).
        compress: "s390_ext" only: zlib-compress entries of ``entry_size`` bytes.
        entry_size: bytes of memory per compressed entry (zipl: 1 MiB).
        block_size: device block size of the entry offsets (DASD: 4096).
        when: dump time recorded in the header (default: now).
    """
    cpus = dump_cpu_registers(dump)
    lc_vec = [c.prefix for c in cpus if c.prefix is not None]
    patches = _save_area_patches(cpus, dump)
    ranges = [r for r in dump.ranges if r.size]
    mem_size = (max((r.end for r in ranges), default=0) + PAGE - 1) & ~(PAGE - 1)
    tod = datetime_to_tod(when or datetime.datetime.now(datetime.UTC))
    hdr = bytearray(HDR_SIZE)
    struct.pack_into(
        ">QIIIIQQQI4xQQIIIQBHHBI",
        hdr,
        0,
        S390_EXT_MAGIC if extended else S390_MAGIC,
        2 if extended and compress else 5,
        HDR_SIZE,
        4,
        PAGE,
        mem_size,
        0,
        mem_size,  # mem_end: as the zipl dumper and zgetdump -f s390 write it
        mem_size // PAGE,
        tod,
        0,
        2,
        0,
        2,
        mem_size,
        0,
        len(lc_vec),
        len(lc_vec),
        1 if extended and compress else 0,
        entry_size if extended and compress else 0,
    )
    struct.pack_into(f">{len(lc_vec)}I", hdr, 0x800, *lc_vec)
    tmp, f = _open_out(out)
    ok = False
    try:
        f.write(hdr)
        if not extended:
            for r in ranges:
                f.seek(HDR_SIZE + r.start)
                for pos, data in _stream(dump, r.start, r.end):
                    f.write(_patched(data, pos, patches))
            f.seek(HDR_SIZE + mem_size)
        else:
            _write_segments(f, dump, ranges, patches, compress, entry_size, block_size)
        f.write(struct.pack(">8sQ", END_MARKER, tod + (1 << 12)))
        ok = True
    except OSError as exc:
        raise DumpError(f"cannot write: {exc.strerror}", os.fspath(out)) from None
    finally:
        _finish(tmp, f, out, ok)


def _write_segments(
    f: IO[bytes],
    dump: Any,
    ranges: Sequence[MemoryRange],
    patches: dict[int, bytes],
    compress: bool,
    entry_size: int,
    bs: int,
) -> None:
    pieces: list[tuple[int, int]] = []
    limit = MAX_ENTRIES * entry_size if compress else 1 << 40
    for s, e in _page_runs(ranges):
        a, b = s * PAGE, e * PAGE
        while a < b:
            pieces.append((a, min(b, a + limit)))
            a = min(b, a + limit)
    for n, (start, end) in enumerate(pieces):
        stop = 1 if n == len(pieces) - 1 else 0
        if not compress:
            f.write(struct.pack(">QQQ", start, end - start, stop).ljust(SEGMENT_HDR_SIZE, b"\0"))
            for pos in range(start, end, CHUNK):
                size = min(CHUNK, end - pos)
                f.write(_patched(_read_span(dump, pos, size, ranges), pos, patches))
            continue
        blobs: list[bytes] = []
        offsets: list[int] = []
        blocks = 0
        for pos in range(start, end, entry_size):
            size = min(entry_size, end - pos)
            raw = _patched(_read_span(dump, pos, size, ranges), pos, patches)
            packed = zlib.compress(raw, 1)
            mark = 0
            if len(packed) >= len(raw):
                packed, mark = raw, ENTRY_UNCOMPRESSED
            padded = packed.ljust((len(packed) + bs - 1) // bs * bs, b"\0")
            offsets.append(blocks | mark)
            blobs.append(padded)
            blocks += len(padded) // bs
        head = struct.pack(">QQQI20xI", start, end - start, stop, blocks, len(offsets))
        head += struct.pack(f">{len(offsets)}I", *offsets)
        f.write(head.ljust(SEGMENT_HDR_SIZE, b"\0"))
        for blob in blobs:
            f.write(blob)


def _read_span(dump: Any, start: int, size: int, ranges: Sequence[MemoryRange]) -> bytes:
    try:
        return bytes(dump.read(start, size))
    except DumpError:
        buf = bytearray(size)  # pages only partly in the dump: the rest is zero
        for r in ranges:
            s, e = max(r.start, start), min(r.end, start + size)
            if s < e:
                buf[s - start : e - start] = dump.read(s, e - s)
        return bytes(buf)


__all__ = [
    "convert_to_elf",
    "cpu_notes",
    "dump_cpu_registers",
    "dump_notes",
    "write_kdump",
    "write_s390",
]
