"""s390 stand-alone dump formats written by the zipl dump tools: "s390" and "s390_ext".

Layouts from IBM s390-tools (``include/dump/s390_dump.h``, ``zdump/dfi_s390.c``,
``zdump/df_s390.c``, zipl ``eckd2dump*.c``), all big-endian:

* ``struct df_s390_hdr`` (4 KiB at offset 0): magic u64 @0 (0xA8190173618F23FD "s390",
  ...FE "s390_ext"), version u32 @8, hdr_size @0xC, dump_level @0x10, page_size @0x14,
  mem_size u64 @0x18, mem_start @0x20, mem_end @0x28, num_pages u32 @0x30, tod u64 @0x38
  (dump start), cpu_id u64 @0x40, arch u32 @0x48 (2 = 64-bit), volnr @0x4C, build_arch @0x50,
  mem_size_real u64 @0x54 (unaligned), mvdump u8 @0x5C, cpu_cnt u16 @0x5D, real_cpu_cnt u16
  @0x5F, zlib_version_s390 u8 @0x61, zlib_entry_size u32 @0x62, mvdump_sign u64 @0x200,
  mvdump_zipl_time @0x208, lc_vec[512] u32 @0x800: the lowcore (prefix) of each CPU.
* "s390": ``mem_size`` bytes of memory from absolute 0 at offset 0x1000, then the 16-byte
  end marker ``"DUMP_END"`` + TOD (not earlier than the header's TOD).
* "s390_ext": from offset 0x1000 a chain of segments, each a 4 KiB header ``{start u64 @0,
  len u64 @8, stop_marker u64 @0x10, size_on_disk u32 @0x18 (in device blocks, 0 = stored
  uncompressed), entry_count u32 @0x30, entry_offset[] u32 @0x34}`` followed by its data:
  ``len`` raw bytes, or ``entry_count`` zlib streams, one per ``zlib_entry_size`` (1 MiB) of
  memory, at ``entry_offset[i]`` blocks from the data start (bit 31 set: that entry is stored
  raw). The segment with a non-zero stop marker is the last; the end marker follows it.
  Memory between segments was not dumped (zgetdump reads it as zeros; here it is not in the
  dump). The zipl dumper writes the first MiB as a raw segment and compresses (DFLTCC) the
  rest; compressed entries are padded to 4 KiB.

Beyond the header fields: ``zlib_version_s390``/``zlib_entry_size`` only count when
``version == 2``: zgetdump (s390-tools ``zdump/dfi_s390.c``, ``dfi_s390_ext.c``) also
requires ``version == 2`` when ``zlib_version_s390`` is set, and reads entry offsets in units
of the *device* block size (``BLKSSZGET``), which a dump copied to a file does not record:
it is found here by walking the segment chain with 4096, 2048, 1024 and 512.

There are no ELF notes: each CPU's registers come from the store-status save area of its
lowcore (architected offsets 0x1200-0x13FF, same in every kernel) at ``lc_vec[i]``; a plain
"s390" dump before version 5 has no CPU list.
"""

from __future__ import annotations

import datetime
import struct
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cramjam

from parsers.dumps.cpustate import CpuRegisters
from parsers.dumps.elfcore import Note, map_readonly
from parsers.dumps.physmem import MemoryRange, RangeIndex
from parsers.dumps.residency import ResidentBudget
from parsers.errors import DumpError, FormatError, TruncatedError, UnmappedError
from parsers.s390.layouts import LOWCORE_ERAS, LOWCORE_SIZE
from parsers.s390.records import decode_lowcore

_PAGE = 4096
_lz4 = cramjam.lz4

S390_MAGIC = 0xA8190173618F23FD
S390_EXT_MAGIC = 0xA8190173618F23FE
HDR_SIZE = 0x1000
SEGMENT_HDR_SIZE = 0x1000
END_MARKER = b"DUMP_END"
CPU_MAX = 512
ENTRY_UNCOMPRESSED = 0x80000000
#: Entries one 4 KiB segment header can list ((0x1000 - 0x34) / 4).
MAX_ENTRIES = (SEGMENT_HDR_SIZE - 0x34) // 4
DEFAULT_ENTRY_SIZE = 1 << 20
BLOCK_SIZES = (4096, 2048, 1024, 512)

_HDR = struct.Struct(">QIIIIQQQI4xQQIIIQBHHBI")  # up to zlib_entry_size (0x66)
_HDR_FIELDS = [
    "magic",
    "version",
    "hdr_size",
    "dump_level",
    "page_size",
    "mem_size",
    "mem_start",
    "mem_end",
    "num_pages",
    "tod",
    "cpu_id",
    "arch",
    "volnr",
    "build_arch",
    "mem_size_real",
    "mvdump",
    "cpu_cnt",
    "real_cpu_cnt",
    "zlib_version_s390",
    "zlib_entry_size",
]
_SEG = struct.Struct(">QQQI20xI")  # start, len, stop_marker, size_on_disk, entry_count
_EM = struct.Struct(">8sQ")

#: TOD clock value of 1970-01-01 00:00:00 UTC (TOD epoch 1900; bit 51 = 1 microsecond).
TOD_UNIX_EPOCH = 2208988800 * 1_000_000 << 12


def tod_to_datetime(tod: int) -> datetime.datetime | None:
    """Convert an s390 TOD clock value to UTC (None for 0), as zgetdump's tod2timeval."""
    if not tod:
        return None
    micros = (tod - TOD_UNIX_EPOCH) >> 12
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=micros
    )


def datetime_to_tod(when: datetime.datetime) -> int:
    """The TOD clock value of an aware datetime."""
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    micros = (when - epoch) // datetime.timedelta(microseconds=1)
    return TOD_UNIX_EPOCH + (micros << 12)


@dataclass(frozen=True, slots=True)
class S390Header:
    """The fields of ``struct df_s390_hdr`` that matter for reading."""

    magic: int
    version: int
    hdr_size: int
    dump_level: int
    page_size: int
    mem_size: int
    mem_start: int
    mem_end: int
    num_pages: int
    tod: int
    cpu_id: int
    arch: int
    volnr: int
    build_arch: int
    mem_size_real: int
    mvdump: int
    cpu_cnt: int
    real_cpu_cnt: int
    zlib_version_s390: int
    zlib_entry_size: int
    lc_vec: tuple[int, ...]


def parse_header(buf: bytes, path: str) -> S390Header:
    """Decode the 4 KiB header.

    Raises:
        FormatError: wrong magic or implausible fields.
    """
    if len(buf) < HDR_SIZE:
        raise TruncatedError("s390 dump header is truncated", path)
    v = _HDR.unpack_from(buf, 0)
    magic = v[0]
    if magic not in (S390_MAGIC, S390_EXT_MAGIC):
        raise FormatError(f"not an s390 stand-alone dump (magic 0x{magic:016x})", path)
    cpu_cnt = v[16]
    if cpu_cnt > CPU_MAX:
        raise FormatError(f"s390 dump header lists {cpu_cnt} CPUs (at most {CPU_MAX})", path)
    lc_vec = struct.unpack_from(f">{cpu_cnt}I", buf, 0x800)
    hdr = S390Header(**dict(zip(_HDR_FIELDS, v, strict=True)), lc_vec=lc_vec)
    if hdr.arch != 2:
        raise FormatError(
            f"s390 dump of a {'31-bit' if hdr.arch == 1 else f'arch {hdr.arch}'} system: "
            f"only 64-bit (s390x) dumps are read",
            path,
        )
    return hdr


@dataclass(frozen=True, slots=True)
class Segment:
    """Memory ``[start, start + length)`` stored at ``data_offset``; entries if compressed."""

    start: int
    length: int
    data_offset: int
    disk_size: int
    entries: tuple[int, ...] | None


class S390Dump:
    """An "s390" or "s390_ext" stand-alone dump, read lazily through a read-only mmap.

    Args:
        path: the dump file.
        block_size: device block size of the entry offsets of compressed "s390_ext"
            segments; found by trying 4096, 2048, 1024, 512 when omitted.
        cache_entries: decompressed zlib entries (1 MiB each) kept in an LRU cache.

    Raises:
        DumpError: unreadable or damaged.
    """

    #: No ELF notes in these formats; registers are in :attr:`cpu_registers`.
    notes: list[Note]

    def __init__(
        self,
        path: str,
        block_size: int | None = None,
        cache_entries: int = 8,
        packed_bytes: int = 64 << 20,
    ):
        self.path = path
        self.source_path = path
        self.notes = []
        self._map, self.file_size = map_readonly(path)
        #: Keeps the pages of the mapping resident in RSS bounded (parsers.dumps.residency).
        self.resident = ResidentBudget(self._map, path=path)
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._cache_entries = max(1, cache_entries)
        # Entries inflated once are kept as LZ4-compressed 4 KiB pages: a random page read
        # then costs microseconds instead of inflating a whole 1 MiB zlib entry again.
        self._packed: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._packed_size = 0
        self._packed_limit = packed_bytes
        self.warnings: list[str] = []
        try:
            self._parse(block_size)
        except DumpError:
            self.close()
            raise

    # -- parsing ------------------------------------------------------------------------
    def _parse(self, block_size: int | None) -> None:
        m, path = self._map, self.path
        if self.file_size < HDR_SIZE:
            raise TruncatedError("s390 dump header is truncated", path)
        self.header = h = parse_header(bytes(m[:HDR_SIZE]), path)
        self.extended = h.magic == S390_EXT_MAGIC
        self.format = "s390_ext" if self.extended else "s390"
        self.entry_size = h.zlib_entry_size or DEFAULT_ENTRY_SIZE
        if self.entry_size % 4096 or not 4096 <= self.entry_size <= 1 << 30:
            raise FormatError(f"implausible zlib entry size {self.entry_size}", path)
        self.block_size: int | None = None
        if not self.extended:
            end = HDR_SIZE + h.mem_size
            if end + 16 > self.file_size:
                raise TruncatedError(
                    f"the dump declares {h.mem_size} bytes of memory but the file has only "
                    f"{max(0, self.file_size - HDR_SIZE)} after the header: truncated",
                    path,
                )
            self.segments: tuple[Segment, ...] = (
                (Segment(0, h.mem_size, HDR_SIZE, h.mem_size, None),) if h.mem_size else ()
            )
            self._check_end_marker(end)
        else:
            sizes = (block_size,) if block_size else BLOCK_SIZES
            errors: list[DumpError] = []
            for bs in sizes:
                try:
                    self.segments, end = self._walk_segments(bs)
                    self._check_end_marker(end)
                except DumpError as exc:
                    errors.append(exc)
                    continue
                self.block_size = bs
                break
            else:
                raise errors[0]
        self._index = RangeIndex(
            [(s.start, s.start + s.length, i) for i, s in enumerate(self.segments) if s.length]
        )
        self._ranges = self._index.ranges()
        self.cpu_registers: Sequence[Any] | None = self._cpus()

    def _walk_segments(self, bs: int) -> tuple[tuple[Segment, ...], int]:
        m, path, h = self._map, self.path, self.header
        segments: list[Segment] = []
        off, old = HDR_SIZE, 0
        stop = False
        while off < HDR_SIZE + h.mem_size and not stop:
            if off + SEGMENT_HDR_SIZE > self.file_size:
                raise TruncatedError(
                    f"segment header at file offset 0x{off:x} is past the end of the file: "
                    f"the dump is truncated",
                    path,
                )
            start, length, stop_marker, disk, count = _SEG.unpack_from(m, off)
            where = f"segment at file offset 0x{off:x}"
            if start < old or start + length > h.mem_size or start % 4096:
                raise FormatError(
                    f"{where} covers 0x{start:x}+0x{length:x}, outside memory or out of order",
                    path,
                )
            data = off + SEGMENT_HDR_SIZE
            entries: tuple[int, ...] | None = None
            if disk:
                need = -(-length // self.entry_size)
                if count != need or count > MAX_ENTRIES:
                    raise FormatError(
                        f"{where} has {count} compressed entries for {length} bytes "
                        f"(expected {need})",
                        path,
                    )
                size = disk * bs
            else:
                size = length
            if data + size > self.file_size:  # before the entries: say "truncated" first
                raise TruncatedError(
                    f"{where} ({size} bytes of data) extends past the end of the file: the "
                    f"dump is truncated",
                    path,
                )
            if disk:
                entries = struct.unpack_from(f">{count}I", m, off + 0x34)
                for e in entries:
                    pos = data + (e & ~ENTRY_UNCOMPRESSED) * bs
                    if pos >= data + size or pos + 2 > self.file_size:
                        raise FormatError(f"{where}: entry offset past the segment", path)
                    if not e & ENTRY_UNCOMPRESSED:
                        cmf, flg = m[pos], m[pos + 1]
                        if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31:
                            raise FormatError(
                                f"{where}: entry at file offset 0x{pos:x} is not a zlib "
                                f"stream (block size {bs}?)",
                                path,
                            )
            segments.append(Segment(start, length, data, size, entries))
            old = start + length
            off = data + size
            stop = bool(stop_marker)
        if not stop:
            raise FormatError("no segment with a stop marker: the dump is incomplete", path)
        return tuple(segments), off

    def _check_end_marker(self, off: int) -> None:
        if off + 16 > self.file_size:
            raise TruncatedError("the end marker is missing: the dump is truncated", self.path)
        magic, tod = _EM.unpack_from(self._map, off)
        if magic != END_MARKER:
            raise FormatError(
                f"no end marker 'DUMP_END' at file offset 0x{off:x}: the dump is incomplete",
                self.path,
            )
        if tod < self.header.tod:
            raise FormatError("the end marker's time is before the dump's start", self.path)
        self.end_tod = tod

    def _cpus(self) -> list[CpuRegisters] | None:
        h = self.header
        if h.version < 5 and not self.extended:
            return None  # zgetdump: no prefix registers in the header before version 5
        out: list[CpuRegisters] = []
        era = LOWCORE_ERAS[-1]  # only the architected save area is read
        for i, prefix in enumerate(h.lc_vec):
            try:
                buf = self.read(prefix, LOWCORE_SIZE)
            except UnmappedError:
                self.warnings.append(
                    f"CPU {i}: lowcore at 0x{prefix:x} is not in the dump; no registers"
                )
                continue
            lc = decode_lowcore(buf, era)
            out.append(
                CpuRegisters(
                    index=i,
                    cpu_id=i + 1,
                    pid_swapped=False,
                    psw=lc.sa_psw,
                    gprs=lc.sa_gprs,
                    acrs=lc.sa_acrs,
                    orig_gpr2=0,
                    crs=lc.sa_crs,
                    prefix=prefix,
                    timer=lc.sa_timer,
                    todcmp=lc.sa_clock_comparator,
                    todpreg=lc.sa_todpreg,
                    fpc=lc.sa_fpc,
                    fprs=lc.sa_fprs,
                    note_names=(),
                    source="lowcore save area",
                )
            )
        return out

    # -- PhysicalMemory -----------------------------------------------------------------
    @property
    def ranges(self) -> Sequence[MemoryRange]:
        """Absolute memory held in the dump."""
        return self._ranges

    def _entry(self, si: int, ei: int) -> bytes:
        key = (si, ei)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        seg = self.segments[si]
        assert seg.entries is not None and self.block_size is not None
        raw_off = seg.entries[ei]
        pos = seg.data_offset + (raw_off & ~ENTRY_UNCOMPRESSED) * self.block_size
        want = min(self.entry_size, seg.length - ei * self.entry_size)
        address = seg.start + ei * self.entry_size
        if raw_off & ENTRY_UNCOMPRESSED:
            if pos + want > seg.data_offset + seg.disk_size:
                raise FormatError(
                    f"raw entry for absolute 0x{address:x} runs past its segment", self.path
                )
            data = self._map[pos : pos + want]
        else:
            end = seg.data_offset + seg.disk_size  # up to the next entry that starts later
            for e in seg.entries[ei + 1 :]:
                nxt = seg.data_offset + (e & ~ENTRY_UNCOMPRESSED) * self.block_size
                if nxt > pos:
                    end = min(end, nxt)
                    break
            d = zlib.decompressobj()
            try:
                data = d.decompress(self._map[pos:end], want)
            except zlib.error as exc:
                raise FormatError(
                    f"compressed entry for absolute 0x{address:x} does not decompress ({exc})",
                    self.path,
                ) from None
            if len(data) != want:
                raise FormatError(
                    f"compressed entry for absolute 0x{address:x} holds {len(data)} bytes, "
                    f"not {want}",
                    self.path,
                )
            self._pack(key, data)
        self._cache[key] = data
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
        return data

    def _pack(self, key: tuple[int, int], data: bytes) -> None:
        """Keep an inflated entry as LZ4 blocks of one page each, within the byte budget."""
        if key in self._packed:
            return
        pages = [
            bytes(_lz4.compress_block(data[i : i + _PAGE])) for i in range(0, len(data), _PAGE)
        ]
        self._packed[key] = pages
        self._packed_size += sum(len(p) for p in pages)
        while self._packed_size > self._packed_limit and len(self._packed) > 1:
            _, old = self._packed.popitem(last=False)
            self._packed_size -= sum(len(p) for p in old)

    def _entry_slice(self, si: int, ei: int, offset: int, size: int) -> bytes:
        """Bytes ``[offset, offset + size)`` of an entry, from the packed pages if possible."""
        key = (si, ei)
        if key not in self._cache:
            pages = self._packed.get(key)
            page, rel = divmod(offset, _PAGE)
            if pages is not None and rel + size <= _PAGE and page < len(pages):
                self._packed.move_to_end(key)
                return bytes(_lz4.decompress_block(pages[page]))[rel : rel + size]
        return self._entry(si, ei)[offset : offset + size]

    def read(self, address: int, size: int) -> bytes:
        """Read absolute memory across segments.

        Raises:
            UnmappedError: a byte of the request is not in the dump.
        """
        self.resident.charge(size)
        idx = self._index
        parts: list[bytes] = []
        while size > 0:
            i = idx.find(address)
            if i < 0:
                raise UnmappedError(address, path=self.path)
            si = idx.payloads[i]
            seg = self.segments[si]
            rel = address - seg.start
            take = min(size, seg.length - rel)
            if seg.entries is None:
                off = seg.data_offset + rel
                chunk = self._map[off : off + take]
            else:
                ei, eo = divmod(rel, self.entry_size)
                take = min(take, self.entry_size - eo)
                chunk = self._entry_slice(si, ei, eo, take)
            if take == size and not parts:
                return chunk
            parts.append(chunk)
            address += take
            size -= take
        return b"".join(parts)

    @property
    def vmcoreinfo_text(self) -> str | None:
        """Not kept in these formats (read it through absolute 0xE0C)."""
        return None

    def format_facts(self) -> dict[str, Any]:
        """zgetdump -i style facts."""
        h = self.header
        start, end = tod_to_datetime(h.tod), tod_to_datetime(self.end_tod)
        compressed = sum(1 for s in self.segments if s.entries is not None)
        facts: dict[str, Any] = {
            "version": h.version,
            "dump_start": start.isoformat() if start else None,
            "dump_end": end.isoformat() if end else None,
            "cpu_id": f"0x{h.cpu_id:x}",
            "cpus_dumped": h.cpu_cnt,
            "cpus_real": h.real_cpu_cnt,
            "memory_size": h.mem_size,
            "memory_size_real": h.mem_size_real,
            "page_size": h.page_size,
            "dump_level": h.dump_level,
            "memory_ranges": [[f"0x{r.start:x}", f"0x{r.end:x}"] for r in self._ranges],
            "lowcores": [f"0x{p:x}" for p in h.lc_vec],
        }
        if self.extended:
            facts.update(
                segments=len(self.segments),
                compressed_segments=compressed,
                zlib_version=h.zlib_version_s390,
                zlib_entry_size=self.entry_size if compressed else h.zlib_entry_size,
                block_size=self.block_size,
            )
        return facts

    def close(self) -> None:
        """Unmap the file."""
        try:
            self._map.close()
        except (AttributeError, ValueError, BufferError):
            pass


__all__ = ["S390Dump", "S390Header", "datetime_to_tod", "parse_header", "tod_to_datetime"]
