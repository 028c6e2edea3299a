"""Compressed kdump reader (makedumpfile "kdump-compressed" / diskdump, and its flattened form).

Layout (makedumpfile ``diskdump_mod.h``; offsets checked against QEMU 7.2 output, big-endian
on s390x, every structure at natural alignment):

* block 0: ``struct disk_dump_header``: signature ``"KDUMP   "`` @0, header_version s32 @0x8,
  utsname 6 x 65 bytes @0xC, timestamp (timeval: 2 x s64) @0x198, status u32 @0x1A8
  (compression flags), block_size s32 @0x1AC, sub_hdr_size s32 @0x1B0 (blocks),
  bitmap_blocks u32 @0x1B4, max_mapnr u32 @0x1B8 (obsolete since v6), total_ram_blocks,
  device_blocks, written_blocks, current_cpu u32 @0x1BC..0x1C8, nr_cpus s32 @0x1CC.
* block 1: ``struct kdump_sub_header`` (``sub_hdr_size`` blocks): phys_base @0, dump_level
  s32 @8, split s32 @0xC, start_pfn @0x10, end_pfn @0x18 (v2+), offset_vmcoreinfo @0x20,
  size_vmcoreinfo @0x28 (v3+), offset_note @0x30, size_note @0x38 (v4+), offset_eraseinfo
  @0x40, size_eraseinfo @0x48 (v5+), start_pfn_64 @0x50, end_pfn_64 @0x58, max_mapnr_64
  @0x60 (v6+). The ELF notes of the crashed kernel and its VMCOREINFO text sit inside it.
* two bitmaps of ``bitmap_blocks / 2`` blocks each, bit ``pfn % 8`` of byte ``pfn // 8``:
  the first marks RAM, the second the pages written (a page of RAM not written was
  excluded by the dump level).
* ``page_desc`` array (24 bytes: offset s64, size u32, flags u32, page_flags u64), one per
  written page in pfn order, then the page data. ``flags`` holds the compression of the
  page (0x1 zlib, 0x2 lzo, 0x4 snappy, 0x20 zstd); a page stored raw has none.

The *flattened* form (``makedumpfile -F``, QEMU's only kdump output) is a 4 KiB header
(``"makedumpfile"`` signature, type s64 = 1, version s64 = 1) followed by records
``{offset s64, size s64, data}`` ending with offset = size = -1: the plain file is what one
gets by writing every record's data at its offset. It is read through a one-time index of
the records, never rewritten.

A split dump (``makedumpfile --split``) is several files of the same layout, each holding the
pages of ``[start_pfn, end_pfn)``.
"""

from __future__ import annotations

import bisect
import itertools
import re
import struct
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from parsers.dumps.elfcore import Note, map_readonly, parse_notes
from parsers.dumps.physmem import MemoryRange
from parsers.dumps.residency import ResidentBudget
from parsers.errors import DumpError, FormatError, TruncatedError, UnmappedError

KDUMP_SIGNATURE = b"KDUMP   "
FLAT_SIGNATURE = b"makedumpfile"
FLAT_HEADER_SIZE = 4096

# page_desc.flags / disk_dump_header.status (makedumpfile diskdump_mod.h)
DUMP_DH_COMPRESSED_ZLIB = 0x1
DUMP_DH_COMPRESSED_LZO = 0x2
DUMP_DH_COMPRESSED_SNAPPY = 0x4
DUMP_DH_COMPRESSED_INCOMPLETE = 0x8
DUMP_DH_EXCLUDED_VMEMMAP = 0x10
DUMP_DH_COMPRESSED_ZSTD = 0x20
_COMPRESSION_NAMES = {
    DUMP_DH_COMPRESSED_ZLIB: "zlib",
    DUMP_DH_COMPRESSED_LZO: "lzo",
    DUMP_DH_COMPRESSED_SNAPPY: "snappy",
    DUMP_DH_COMPRESSED_ZSTD: "zstd",
}
_COMPRESSION_MASK = (
    DUMP_DH_COMPRESSED_ZLIB
    | DUMP_DH_COMPRESSED_LZO
    | DUMP_DH_COMPRESSED_SNAPPY
    | DUMP_DH_COMPRESSED_ZSTD
)

#: makedumpfile -d bits: what a dump level leaves out.
DUMP_LEVEL_BITS = {
    1: "zero pages",
    2: "page cache (non-private)",
    4: "page cache (private)",
    8: "user pages",
    16: "free pages",
}

_HEADER = struct.Struct(">8si390s6xqqIiiIIIIIIi")  # disk_dump_header up to nr_cpus
_SUB_HEADER = struct.Struct(">QiiQQqQqQqQQQQ")  # kdump_sub_header, all versions
_DESC = struct.Struct(">qIIQ")  # page_desc
_FLAT_RECORD = struct.Struct(">qq")
_UTS_FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")

#: Largest page size accepted (s390x uses 4 KiB; other architectures up to 64 KiB).
MAX_BLOCK_SIZE = 1 << 16
#: Largest physical address space accepted: 2^52 pages is beyond any machine.
MAX_MAPNR = 1 << 52
#: Bits per entry of the cumulative popcount table of the written-pages bitmap.
_RANK_CHUNK_BITS = 4096
_RANK_CHUNK_BYTES = _RANK_CHUNK_BITS // 8
_NONZERO_RUN = re.compile(rb"[^\x00]+")
_FF_RUN = re.compile(rb"\xff+")


# -- file access ------------------------------------------------------------------------------
class _Source:
    """Bytes of one logical kdump file: a plain file (mmap) or an indexed flattened file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._map, self.file_size = map_readonly(path)
        #: Keeps the pages of the mapping resident in RSS bounded (parsers.dumps.residency).
        self.resident = ResidentBudget(self._map, path=path)
        self.flattened = bytes(self._map[: len(FLAT_SIGNATURE)]) == FLAT_SIGNATURE
        self.flat_complete = True
        self.flat_records = 0
        # flattened: sorted, non-overlapping (logical start, logical end, file offset)
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._offs: list[int] = []
        if self.flattened:
            try:
                self._index_flat()
            except DumpError:
                self.close()
                raise
        #: Size of the logical (plain) file.
        self.size = self._ends[-1] if self.flattened and self._ends else self.file_size

    def _index_flat(self) -> None:
        m, path = self._map, self.path
        if self.file_size < FLAT_HEADER_SIZE:
            raise TruncatedError("flattened kdump header is truncated", path)
        ftype, _version = struct.unpack_from(">qq", m, 16)
        if ftype != 1:
            raise FormatError(f"flattened makedumpfile file of unknown type {ftype}", path)
        records: list[tuple[int, int, int]] = []
        pos = FLAT_HEADER_SIZE
        self.flat_complete = False
        while pos + 16 <= self.file_size:
            offset, size = _FLAT_RECORD.unpack_from(m, pos)
            if offset == -1 and size == -1:
                self.flat_complete = True
                break
            if offset < 0 or size < 0:
                raise FormatError(
                    f"flattened record at file offset 0x{pos:x} has a negative offset or "
                    f"size ({offset}, {size})",
                    path,
                )
            if pos + 16 + size > self.file_size:
                raise TruncatedError(
                    f"flattened record at file offset 0x{pos:x} ({size} bytes for offset "
                    f"0x{offset:x}) runs past the end of the file: the dump is truncated",
                    path,
                )
            if size:
                records.append((offset, offset + size, pos + 16))
            pos += 16 + size
        else:
            if pos != self.file_size:
                raise TruncatedError(
                    f"flattened record header at file offset 0x{pos:x} is truncated", path
                )
        self.flat_records = len(records)
        self._build_flat_index(records)

    def _build_flat_index(self, records: list[tuple[int, int, int]]) -> None:
        """Index the records; where records overlap the later one wins (as ``makedumpfile -R``)."""
        if all(records[i][1] <= records[i + 1][0] for i in range(len(records) - 1)):
            pieces = records  # the usual case: written in order, no overlap
        else:
            starts: list[int] = []
            items: list[tuple[int, int, int]] = []
            for s, e, off in records:
                i = bisect.bisect_right(starts, s) - 1
                if i < 0 or items[i][1] <= s:
                    i += 1
                new: list[tuple[int, int, int]] = []
                j = i
                while j < len(items) and items[j][0] < e:
                    a, b, o = items[j]
                    if a < s:
                        new.append((a, s, o))
                    if b > e:
                        new.append((e, b, o + (e - a)))
                    j += 1
                new.append((s, e, off))
                new.sort()
                items[i:j] = new
                starts[i:j] = [p[0] for p in new]
            pieces = items
        self._starts = [p[0] for p in pieces]
        self._ends = [p[1] for p in pieces]
        self._offs = [p[2] for p in pieces]

    def read(self, offset: int, size: int) -> bytes:
        """Bytes ``[offset, offset + size)`` of the logical file.

        Raises:
            TruncatedError: part of the range is not in the file.
        """
        self.resident.charge(size)
        if not self.flattened:
            if offset < 0 or offset + size > self.file_size:
                raise TruncatedError(
                    f"{size} bytes at offset 0x{offset:x} lie past the end of the file "
                    f"({self.file_size} bytes): the dump is truncated",
                    self.path,
                )
            return self._map[offset : offset + size]
        starts, ends, offs = self._starts, self._ends, self._offs
        i = bisect.bisect_right(starts, offset) - 1
        if i >= 0 and offset + size <= ends[i]:
            o = offs[i] + offset - starts[i]
            return self._map[o : o + size]
        parts = []
        pos, end = offset, offset + size
        while pos < end:
            if i < 0 or pos >= ends[i]:
                raise TruncatedError(
                    f"offset 0x{pos:x} of the dump is in no record of the flattened file"
                    + ("" if self.flat_complete else " (the file has no end marker: truncated)"),
                    self.path,
                )
            take = min(end, ends[i]) - pos
            o = offs[i] + pos - starts[i]
            parts.append(self._map[o : o + take])
            pos += take
            i += 1
            if i < len(starts) and starts[i] > pos:
                i = -1  # a hole between records
        return b"".join(parts)

    def close(self) -> None:
        try:
            self._map.close()
        except (AttributeError, ValueError, BufferError):
            pass


# -- decompression ----------------------------------------------------------------------------
Decoder = Callable[[bytes, int], bytes]


def _zlib(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, limit)
    if d.unconsumed_tail:
        raise ValueError(f"decompresses to more than {limit} bytes")
    return out


def _zstd_decoder() -> Decoder:
    import io

    import zstandard

    dctx = zstandard.ZstdDecompressor()

    def decode(data: bytes, limit: int) -> bytes:
        with dctx.stream_reader(io.BytesIO(data)) as reader:
            out = reader.read(limit + 1)
        if len(out) > limit:
            raise ValueError(f"decompresses to more than {limit} bytes")
        return bytes(out)

    return decode


def _lzo_decoder() -> Decoder:
    import lzo  # python-lzo

    def decode(data: bytes, limit: int) -> bytes:
        return bytes(lzo.decompress(data, False, limit))

    return decode


def _snappy_decoder() -> Decoder:
    import cramjam

    def decode(data: bytes, limit: int) -> bytes:
        n = cramjam.snappy.decompress_raw_len(data)
        if n > limit:
            raise ValueError(f"declares {n} bytes, more than {limit}")
        return bytes(cramjam.snappy.decompress_raw(data))

    return decode


_DECODER_FACTORIES: dict[int, tuple[Callable[[], Decoder], str]] = {
    DUMP_DH_COMPRESSED_ZSTD: (_zstd_decoder, "zstandard"),
    DUMP_DH_COMPRESSED_LZO: (_lzo_decoder, "python-lzo"),
    DUMP_DH_COMPRESSED_SNAPPY: (_snappy_decoder, "cramjam"),
}


# -- bitmaps ----------------------------------------------------------------------------------
def _runs_of_byte(value: int) -> tuple[tuple[int, int], ...]:
    """Runs [start, end) of set bits in one LSB-first bitmap byte."""
    runs: list[tuple[int, int]] = []
    for bit in range(8):
        if value >> bit & 1:
            if runs and runs[-1][1] == bit:
                runs[-1] = (runs[-1][0], bit + 1)
            else:
                runs.append((bit, bit + 1))
    return tuple(runs)


_BYTE_RUNS = tuple(_runs_of_byte(v) for v in range(256))


#: Bitmaps are scanned in blocks: a block of zeros or of ones (most of a big machine's
#: bitmaps) is taken whole at memcmp speed; only mixed blocks are looked at byte by byte.
_SCAN_BLOCK = 1 << 16


_ZERO_BLOCK = bytes(_SCAN_BLOCK)
_FF_BLOCK = b"\xff" * _SCAN_BLOCK


def _block_kind(block: bytes | bytearray) -> int:
    """0: all zero, 1: all 0xff, 2: mixed."""
    if len(block) == _SCAN_BLOCK:
        return 0 if block == _ZERO_BLOCK else 1 if block == _FF_BLOCK else 2
    if block.count(0) == len(block):
        return 0
    return 1 if block.count(255) == len(block) else 2


def _bitmap_runs(bitmap: bytes | bytearray, first: int, last: int) -> list[tuple[int, int]]:
    """Runs ``[start, end)`` of set bits in ``[first, last)`` of an LSB-first bitmap."""
    runs: list[tuple[int, int]] = []

    def add(s: int, e: int) -> None:
        s, e = max(s, first), min(e, last)
        if s >= e:
            return
        if runs and runs[-1][1] == s:
            runs[-1] = (runs[-1][0], e)
        else:
            runs.append((s, e))

    lo, hi = first // 8, min(len(bitmap), (last + 7) // 8)
    block_start = lo
    while block_start < hi:
        block_end = min(hi, (block_start // _SCAN_BLOCK + 1) * _SCAN_BLOCK)
        kind = _block_kind(bitmap[block_start:block_end])
        if kind == 1:
            add(block_start * 8, block_end * 8)
        elif kind == 2:
            for m in _NONZERO_RUN.finditer(bitmap, block_start, block_end):
                pos, end = m.span()
                while pos < end:
                    ff = _FF_RUN.match(bitmap, pos, end)
                    if ff:
                        add(pos * 8, ff.end() * 8)
                        pos = ff.end()
                        continue
                    base = pos * 8
                    for s, e in _BYTE_RUNS[bitmap[pos]]:
                        add(base + s, base + e)
                    pos += 1
        block_start = block_end
    return runs


def _rank_table(bitmap: bytes | bytearray) -> array:
    """Set bits before each ``_RANK_CHUNK_BITS`` chunk of ``bitmap`` (a cumulative count);
    blocks of zeros or ones are counted whole."""
    rank = array("Q")
    total = 0
    per_block = _SCAN_BLOCK // _RANK_CHUNK_BYTES
    for b in range(0, len(bitmap), _SCAN_BLOCK):
        block = bitmap[b : b + _SCAN_BLOCK]
        chunks = (len(block) + _RANK_CHUNK_BYTES - 1) // _RANK_CHUNK_BYTES
        kind = _block_kind(block)
        if kind == 0:
            rank.extend(itertools.repeat(total, chunks))
        elif kind == 1 and chunks == per_block:
            rank.extend(range(total, total + chunks * _RANK_CHUNK_BITS, _RANK_CHUNK_BITS))
            total += chunks * _RANK_CHUNK_BITS
        else:
            for c in range(0, len(block), _RANK_CHUNK_BYTES):
                rank.append(total)
                total += int.from_bytes(block[c : c + _RANK_CHUNK_BYTES], "little").bit_count()
    return rank


#: A written-pages bitmap of at most this many runs is kept as runs, not as a bitmap.
_MAX_RUNS = 1 << 16


def _runs_in_pieces(
    src: _Source, offset: int, nbytes: int, first: int, last: int
) -> list[tuple[int, int]] | None:
    """Runs of set bits in ``[first, last)`` of the bitmap at ``offset`` of ``src``, read
    1 MiB at a time (the mapping's pages dropped as it goes); None past ``_MAX_RUNS``."""
    runs: list[tuple[int, int]] = []
    piece_bits = 8 << 20
    for c in range(first // piece_bits * (1 << 20), nbytes, 1 << 20):
        base = c * 8
        if base >= last:
            break
        piece = src.read(offset + c, min(1 << 20, nbytes - c))
        for s, e in _bitmap_runs(piece, max(first - base, 0), min(last - base, len(piece) * 8)):
            s, e = s + base, e + base
            if runs and runs[-1][1] == s:
                runs[-1] = (runs[-1][0], e)
            else:
                runs.append((s, e))
        if len(runs) > _MAX_RUNS:
            src.resident.release()
            return None
        if c & ((8 << 20) - 1) == (7 << 20):
            src.resident.release()
    src.resident.release()
    return runs


def _count_bits(bitmap: bytes) -> int:
    total = 0
    for b in range(0, len(bitmap), _SCAN_BLOCK):
        block = bitmap[b : b + _SCAN_BLOCK]
        kind = _block_kind(block)
        if kind:
            total += len(block) * 8 if kind == 1 else int.from_bytes(block, "little").bit_count()
    return total


class _Part:
    """One file of a (possibly split) kdump: header, bitmaps, descriptor index."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.src = _Source(path)
        try:
            self._parse()
        except DumpError:
            self.src.close()
            raise

    def _parse(self) -> None:
        src, path = self.src, self.path
        if src.size < _HEADER.size:
            raise TruncatedError("compressed kdump header is truncated", path)
        head = src.read(0, _HEADER.size)
        (
            sig,
            version,
            uts,
            ts_sec,
            ts_usec,
            status,
            block_size,
            sub_hdr_size,
            bitmap_blocks,
            max_mapnr32,
            _total_ram_blocks,
            _device_blocks,
            _written_blocks,
            current_cpu,
            nr_cpus,
        ) = _HEADER.unpack(head)
        if sig != KDUMP_SIGNATURE:
            raise FormatError(
                f"not a compressed kdump file (signature {sig!r}, expected 'KDUMP   ')", path
            )
        if not 1 <= version <= 6:
            raise FormatError(f"unsupported kdump header version {version} (reads 1-6)", path)
        if block_size < 512 or block_size > MAX_BLOCK_SIZE or block_size & (block_size - 1):
            raise FormatError(f"implausible kdump block size {block_size}", path)
        if sub_hdr_size < 0 or bitmap_blocks == 0 or bitmap_blocks % 2:
            raise FormatError(
                f"implausible kdump layout (sub-header {sub_hdr_size} blocks, bitmaps "
                f"{bitmap_blocks} blocks)",
                path,
            )
        self.version = version
        self.uts = {
            name: uts[i * 65 : (i + 1) * 65].split(b"\0", 1)[0].decode("utf-8", "replace")
            for i, name in enumerate(_UTS_FIELDS)
        }
        self.timestamp = (ts_sec, ts_usec)
        self.status = status
        self.block_size = block_size
        self.page_shift = block_size.bit_length() - 1
        self.current_cpu = current_cpu
        self.nr_cpus = nr_cpus
        bs = block_size
        sub_off = bs
        sub_len = min(_SUB_HEADER.size, sub_hdr_size * bs)
        if sub_off + sub_hdr_size * bs > src.size or sub_len < 12:
            raise TruncatedError("kdump sub-header is truncated", path)
        sub = src.read(sub_off, sub_len).ljust(_SUB_HEADER.size, b"\0")
        (
            self.phys_base,
            self.dump_level,
            split,
            start_pfn,
            end_pfn,
            off_vmci,
            size_vmci,
            off_note,
            size_note,
            _off_erase,
            _size_erase,
            start_pfn64,
            end_pfn64,
            max_mapnr64,
        ) = _SUB_HEADER.unpack(sub)
        max_mapnr = max_mapnr64 if version >= 6 else max_mapnr32
        if max_mapnr <= 0 or max_mapnr > MAX_MAPNR:
            raise FormatError(f"implausible max_mapnr {max_mapnr}", path)
        self.max_mapnr = max_mapnr
        self.split = bool(split) if version >= 2 else False
        if self.split:
            lo, hi = (start_pfn64, end_pfn64) if version >= 6 else (start_pfn, end_pfn)
            if not 0 <= lo < hi <= max_mapnr:
                raise FormatError(f"split part with an implausible pfn range {lo:#x}-{hi:#x}", path)
            self.start_pfn, self.end_pfn = lo, hi
        else:
            self.start_pfn, self.end_pfn = 0, max_mapnr

        # bitmaps
        half = bitmap_blocks // 2 * bs
        bm1_off = (1 + sub_hdr_size) * bs
        if half * 8 < max_mapnr:
            raise FormatError(f"bitmaps ({half} bytes each) too small for {max_mapnr} pages", path)
        if bm1_off + 2 * half > src.size:
            raise TruncatedError("kdump bitmaps extend past the end of the file", path)
        nbytes = (max_mapnr + 7) // 8
        # The RAM bitmap is counted block by block and not kept (32 KiB per GiB of address
        # space): a look-up reads its byte from the file (:meth:`is_ram`).
        self._bitmap1_offset = bm1_off
        ram = 0
        for c in range(0, nbytes, 1 << 20):
            ram += _count_bits(src.read(bm1_off + c, min(1 << 20, nbytes - c)))
            if c & ((8 << 20) - 1) == (7 << 20):
                src.resident.release()
        self.ram_pages = ram
        # The written-pages bitmap as runs of pages, read piece by piece: a QEMU dump (every
        # page written) is one run, a dump that leaves zero pages out a few hundred. Only a
        # bitmap of more than _MAX_RUNS runs (a dump level that drops free or cache pages) is
        # kept whole (32 KiB per GiB of address space) with a rank table.
        bm2_off = bm1_off + half
        runs = _runs_in_pieces(src, bm2_off, nbytes, self.start_pfn, self.end_pfn)
        self.bitmap2: bytearray | None = None
        if runs is not None:
            self.runs = runs
            self._run_starts = array("Q", [s for s, _ in runs])
            self._run_ends = array("Q", [e for _, e in runs])
            before = array("Q")
            total = 0
            for s, e in runs:
                before.append(total)
                total += e - s
            self._run_before = before
            self.dumped_pages = total
        else:
            src.resident.release()
            bitmap2 = bytearray(nbytes)
            for c in range(0, nbytes, 1 << 20):
                bitmap2[c : c + (1 << 20)] = src.read(bm2_off + c, min(1 << 20, nbytes - c))
                if c & ((8 << 20) - 1) == (7 << 20):
                    src.resident.release()
            src.resident.release()
            self.bitmap2 = bitmap2
            self.runs = _bitmap_runs(bitmap2, self.start_pfn, self.end_pfn)
            # cumulative count of written pages before each chunk, from start_pfn
            self._rank = _rank_table(bitmap2)
            self._rank_base = self._count_before(self.start_pfn)
            self.dumped_pages = self._count_before(self.end_pfn) - self._rank_base
        self.data_offset = bm1_off + 2 * half
        #: The first page data after the descriptors: where QEMU writes the one zero page
        #: every zero page's descriptor points at; kept decompressed once read.
        self.first_data = self.data_offset + self.dumped_pages * _DESC.size
        self.shared_page: tuple[tuple[int, int, int], bytes] | None = None
        self.incomplete = bool(status & DUMP_DH_COMPRESSED_INCOMPLETE)
        if not self.incomplete and self.data_offset + self.dumped_pages * _DESC.size > src.size:
            raise TruncatedError(
                f"page descriptors ({self.dumped_pages} x {_DESC.size} bytes at offset "
                f"0x{self.data_offset:x}) extend past the end of the file: the dump is "
                f"truncated",
                path,
            )

        # notes and VMCOREINFO
        self.notes: list[Note] = []
        if version >= 4 and size_note:
            if off_note <= 0 or size_note > 64 << 20 or off_note + size_note > src.size:
                raise TruncatedError(
                    f"ELF notes ({size_note} bytes at offset 0x{off_note:x}) lie outside the file",
                    path,
                )
            blob = src.read(off_note, size_note)
            self.notes = list(parse_notes(blob, 0, size_note, path, base=off_note))
        self.vmcoreinfo: str | None = None
        if version >= 3 and size_vmci:
            if off_vmci <= 0 or size_vmci > 16 << 20 or off_vmci + size_vmci > src.size:
                raise TruncatedError(
                    f"VMCOREINFO ({size_vmci} bytes at offset 0x{off_vmci:x}) lies outside "
                    f"the file",
                    path,
                )
            text = bytes(src.read(off_vmci, size_vmci)).decode("utf-8", "replace")
            self.vmcoreinfo = text.rstrip("\0")

    def is_ram(self, pfn: int) -> bool:
        """Whether the RAM bitmap (bitmap 1) has page ``pfn``."""
        if not 0 <= pfn < self.max_mapnr:
            return False
        return bool(self.src.read(self._bitmap1_offset + (pfn >> 3), 1)[0] >> (pfn & 7) & 1)

    def written(self, pfn: int) -> bool:
        """Whether page ``pfn`` is in the dump (bitmap 2)."""
        bitmap = self.bitmap2
        if bitmap is not None:
            return 0 <= pfn >> 3 < len(bitmap) and bool(bitmap[pfn >> 3] >> (pfn & 7) & 1)
        i = bisect.bisect_right(self._run_starts, pfn) - 1
        return i >= 0 and pfn < self._run_ends[i]

    def _index(self, pfn: int) -> int:
        """The descriptor index of written page ``pfn`` in this part."""
        if self.bitmap2 is not None:
            return self._count_before(pfn) - self._rank_base
        i = bisect.bisect_right(self._run_starts, pfn) - 1
        return int(self._run_before[i]) + pfn - int(self._run_starts[i])

    def _count_before(self, pfn: int) -> int:
        """Written pages with a pfn below ``pfn`` (bitmap 2, when kept)."""
        assert self.bitmap2 is not None
        c, bit = divmod(pfn, _RANK_CHUNK_BITS)
        if c >= len(self._rank):
            return (
                self._rank[-1]
                + int.from_bytes(
                    self.bitmap2[(len(self._rank) - 1) * _RANK_CHUNK_BYTES :], "little"
                ).bit_count()
            )
        start = c * _RANK_CHUNK_BYTES
        word = int.from_bytes(self.bitmap2[start : start + (bit + 7) // 8], "little")
        return int(self._rank[c]) + (word & ((1 << bit) - 1)).bit_count()

    def descriptor(self, pfn: int) -> tuple[int, int, int]:
        """(offset, size, flags) of a written page."""
        index = self._index(pfn)
        pos = self.data_offset + index * _DESC.size
        if pos + _DESC.size > self.src.size:
            raise TruncatedError(
                f"the page descriptor of physical address 0x{pfn << self.page_shift:x} "
                f"lies past the end of the file: the dump is truncated",
                self.path,
            )
        offset, size, flags, _ = _DESC.unpack(self.src.read(pos, _DESC.size))
        return offset, size, flags


class KdumpFile:
    """A makedumpfile compressed dump (plain, flattened, or split into several files).

    Args:
        paths: the dump file, or all files of a split dump (any order).
        cache_pages: decompressed pages kept in an LRU cache.

    Raises:
        DumpError: unreadable or damaged.
    """

    #: kdump files carry registers in notes; see :class:`parsers.dumps.dumpfile.DumpFile`.
    cpu_registers: Sequence[Any] | None = None

    def __init__(self, paths: str | Sequence[str], cache_pages: int = 1024) -> None:
        names = [paths] if isinstance(paths, str) else list(paths)
        if not names:
            raise DumpError("no dump file given")
        self.path = names[0]
        self.source_path = names[0]
        self.paths = names
        self._parts: list[_Part] = []
        try:
            for name in names:
                self._parts.append(_Part(name))
            self._check_parts()
        except DumpError:
            self.close()
            raise
        first = self._parts[0]
        self.format = "kdump-flat" if first.src.flattened else "kdump"
        self.page_size = first.block_size
        self._shift = first.page_shift
        self._part_starts = [p.start_pfn for p in self._parts]
        self.notes: list[Note] = first.notes
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_pages = max(1, cache_pages)
        self._decoders: dict[int, Decoder] = {DUMP_DH_COMPRESSED_ZLIB: _zlib}
        runs: list[tuple[int, int]] = []
        for p in self._parts:
            runs.extend(p.runs)
        runs.sort()
        merged: list[MemoryRange] = []
        for s, e in runs:
            if merged and merged[-1].end == s << self._shift:
                merged[-1] = MemoryRange(merged[-1].start, e << self._shift)
            else:
                merged.append(MemoryRange(s << self._shift, e << self._shift))
        self._ranges = merged

    def _check_parts(self) -> None:
        parts = sorted(self._parts, key=lambda p: p.start_pfn)
        first = parts[0]
        for p in parts[1:]:
            if (p.block_size, p.max_mapnr) != (first.block_size, first.max_mapnr):
                raise FormatError(
                    f"not a part of the same split dump as {first.path} (block size or "
                    f"memory size differ)",
                    p.path,
                )
        if len(parts) > 1:
            for a, b in itertools.pairwise(parts):
                if not (a.split and b.split) or a.end_pfn > b.start_pfn:
                    raise FormatError(
                        "several files given, but they are not the non-overlapping parts of "
                        "one split dump",
                        b.path,
                    )
        self._parts = parts

    # -- PhysicalMemory ---------------------------------------------------------------------
    @property
    def ranges(self) -> Sequence[MemoryRange]:
        """Absolute memory held in the dump (the written pages)."""
        return self._ranges

    def _part_for(self, pfn: int) -> _Part | None:
        i = bisect.bisect_right(self._part_starts, pfn) - 1
        if i >= 0 and pfn < self._parts[i].end_pfn:
            return self._parts[i]
        return None

    def _missing(self, pfn: int, address: int) -> UnmappedError:
        part = self._part_for(pfn)
        first = self._parts[0]
        if part is None:
            if first.split and pfn < first.max_mapnr:
                return UnmappedError(
                    address,
                    f"physical address 0x{address:x} is in a part of the split dump that "
                    f"was not given",
                    self.path,
                )
            return UnmappedError(address, path=self.path)
        if part.is_ram(pfn):
            return UnmappedError(
                address,
                f"physical address 0x{address:x} is excluded by makedumpfile "
                f"(dump level {part.dump_level})",
                part.path,
            )
        return UnmappedError(address, path=part.path)

    def page(self, pfn: int, at: int | None = None) -> bytes:
        """The decompressed page ``pfn`` (``at``: the address to name in errors).

        Raises:
            UnmappedError: the page is not in the dump (a hole, or excluded).
            FormatError: its descriptor or data are damaged.
        """
        cache = self._cache
        data = cache.get(pfn)
        if data is not None:
            cache.move_to_end(pfn)
            return data
        address = pfn << self._shift if at is None else at
        part = self._part_for(pfn)
        if part is None or not part.written(pfn):
            raise self._missing(pfn, address)
        offset, size, flags = part.descriptor(pfn)
        psize = self.page_size
        if offset == 0 and part.incomplete:
            raise UnmappedError(
                address,
                f"physical address 0x{address:x} was not written (the dump is incomplete)",
                part.path,
            )
        if offset <= 0 or size == 0 or size > psize:
            raise FormatError(
                f"damaged page descriptor for physical address 0x{address:x} (offset "
                f"0x{offset:x}, size {size}, flags 0x{flags:x})",
                part.path,
            )
        if offset + size > part.src.size:
            raise TruncatedError(
                f"the data of physical address 0x{address:x} ({size} bytes at offset "
                f"0x{offset:x}) lies past the end of the file: the dump is truncated",
                part.path,
            )
        shared = part.shared_page
        if shared is not None and shared[0] == (offset, size, flags):
            # QEMU points every zero page's descriptor at one copy: decompressed once.
            data = shared[1]
            cache[pfn] = data
            if len(cache) > self._cache_pages:
                cache.popitem(last=False)
            return data
        raw = part.src.read(offset, size)
        kind = flags & _COMPRESSION_MASK
        if kind == 0:
            if size != psize:
                raise FormatError(
                    f"uncompressed page at physical address 0x{address:x} has {size} bytes, "
                    f"not {psize}",
                    part.path,
                )
            data = raw
        else:
            data = self._decompress(kind, raw, address, part.path)
        if part.shared_page is None and part.first_data == offset:
            part.shared_page = ((offset, size, flags), data)
        cache[pfn] = data
        if len(cache) > self._cache_pages:
            cache.popitem(last=False)
        return data

    def _decompress(self, kind: int, raw: bytes, address: int, path: str) -> bytes:
        decode = self._decoders.get(kind)
        name = _COMPRESSION_NAMES.get(kind, f"flags 0x{kind:x}")
        if decode is None:
            factory = _DECODER_FACTORIES.get(kind)
            if factory is None:
                raise FormatError(
                    f"page at physical address 0x{address:x} has an unknown compression ({name})",
                    path,
                )
            make, package = factory
            try:
                decode = make()
            except ImportError:
                raise DumpError(
                    f"pages are {name}-compressed: install the Python package '{package}' "
                    f"to read them (pip install {package})",
                    path,
                ) from None
            self._decoders[kind] = decode
        try:
            data = decode(bytes(raw), self.page_size)
        except Exception as exc:  # each codec raises its own error type
            raise FormatError(
                f"page at physical address 0x{address:x} does not decompress ({name}: {exc})",
                path,
            ) from None
        if len(data) != self.page_size:
            raise FormatError(
                f"page at physical address 0x{address:x} decompresses to {len(data)} bytes, "
                f"not {self.page_size} ({name})",
                path,
            )
        return data

    def read(self, address: int, size: int) -> bytes:
        """Read absolute memory (any size, across pages).

        Raises:
            UnmappedError: a byte of the request is not in the dump.
        """
        shift = self._shift
        pfn = address >> shift
        off = address & (self.page_size - 1)
        if off + size <= self.page_size:
            data = self.page(pfn, address)
            return data if size == self.page_size else data[off : off + size]
        parts = []
        while size > 0:
            take = min(size, self.page_size - off)
            parts.append(self.page(pfn, (pfn << shift) + off)[off : off + take])
            size -= take
            pfn += 1
            off = 0
        return b"".join(parts)

    @property
    def vmcoreinfo_text(self) -> str | None:
        """VMCOREINFO kept by makedumpfile (sub-header copy, else the notes' VMCOREINFO)."""
        first = self._parts[0]
        if first.vmcoreinfo:
            return first.vmcoreinfo
        for note in self.notes:
            if note.name == "VMCOREINFO":
                return note.desc.decode("utf-8", "replace").rstrip("\0")
        return None

    def format_facts(self) -> dict[str, Any]:
        """Header facts for ``backchain info``."""
        first = self._parts[0]
        kinds = [n for bit, n in _COMPRESSION_NAMES.items() if first.status & bit]
        excluded = [what for bit, what in DUMP_LEVEL_BITS.items() if first.dump_level & bit]
        ts_sec, ts_usec = first.timestamp
        facts: dict[str, Any] = {
            "header_version": first.version,
            "flattened": first.src.flattened,
            "dump_level": first.dump_level,
            "dump_level_excludes": excluded,
            "compression": kinds or ["none"],
            "block_size": first.block_size,
            "utsname_release": first.uts["release"],
            "utsname_machine": first.uts["machine"],
            "timestamp": ts_sec + ts_usec / 1e6 if ts_sec else None,
            "phys_base": f"0x{first.phys_base:x}",
            "nr_cpus": first.nr_cpus,
            "max_mapnr": first.max_mapnr,
            "dumped_pages": sum(p.dumped_pages for p in self._parts),
            "excluded_pages": max(0, first.ram_pages - sum(p.dumped_pages for p in self._parts)),
            "incomplete": first.incomplete,
            "notes": len(self.notes),
            "split": first.split,
        }
        if first.split:
            facts["split_parts"] = [
                {"path": p.path, "start_pfn": p.start_pfn, "end_pfn": p.end_pfn}
                for p in self._parts
            ]
        if first.src.flattened:
            facts["flat_records"] = sum(p.src.flat_records for p in self._parts)
            facts["flat_complete"] = all(p.src.flat_complete for p in self._parts)
        return facts

    def close(self) -> None:
        """Release the files."""
        for p in self._parts:
            p.src.close()


__all__ = ["KdumpFile"]
