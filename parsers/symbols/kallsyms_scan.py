"""The kernel's kallsyms tables found in its memory by their content (no VMCOREINFO help).

5.10 (and any kernel before "kallsyms: ... vmcoreinfo" export) writes no ``KALLSYMS`` entries
into VMCOREINFO, but its image holds the tables ``scripts/kallsyms.c`` generated, in one of
these orders (each table's label aligned; 7.x aligns to 4, older kernels to 8):

- 5.10 and Debian 6.1: ``kallsyms_offsets``, ``kallsyms_relative_base`` (u64),
  ``kallsyms_num_syms`` (u32), ``kallsyms_names``, ``kallsyms_markers`` (u32 per 256
  names), [``kallsyms_seqs_of_names``: 3 bytes per symbol, Debian's 6.1 backport],
  ``kallsyms_token_table``, ``kallsyms_token_index``.
- 6.2 up to 6.x (6.12): ``num_syms``, ``names``, ``markers``, ``token_table``,
  ``token_index``, ``offsets``, ``relative_base``, ``seqs_of_names``.
- 7.x: the same without ``relative_base`` (each offset relative to its own slot).

The search, from the most distinctive content outwards:

1. ``kallsyms_token_table``: 256 NUL-terminated tokens in index order. A character that occurs
   in some symbol keeps the single-character token at its own byte value (compression only
   reuses unused codes), so the digits sit at 0x30..0x39: ``"0", "1", ... "9"`` in a row.
2. ``kallsyms_token_index``: right after the table, 256 big-endian u16 offsets that must hit
   every token boundary of the table exactly; every single-character token at its own code.
3. ``kallsyms_markers``: before the table (or before ``seqs_of_names``): u32 offsets into the
   names of every 256th name, starting at 0 and growing by at least 2 bytes a name.
4. ``kallsyms_num_syms`` and ``kallsyms_names``: a count matching the number of markers, right
   before names that, walked name by name, hit every marker and end at the markers.
5. ``kallsyms_offsets`` (and ``kallsyms_relative_base``) where the layout puts them: exactly
   ``num_syms`` entries, sorted by address.

Anything that does not fit raises :class:`SymbolError`; nothing is guessed.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from operator import le

from parsers.errors import DumpError, SymbolError
from parsers.symbols.kallsyms import MAX_NAMES_BYTES, MAX_SYMS, KallsymsTables, Reader

#: How much of the kernel image is searched (the tables lie within the first ~16 MiB of the
#: 7.2 image; a kernel image is a few tens of MiB).
SCAN_LIMIT = 64 << 20
#: Bytes read at a time while searching.
CHUNK = 4 << 20
#: The digit tokens 0x30..0x39 in a row (a regular expression: bytes.find is five times
#: slower on memory full of the zero bytes the pattern holds).
ANCHOR = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00"
_ANCHOR = re.compile(re.escape(ANCHOR))
#: More places holding the digit run than any kernel has: past this, refuse.
MAX_ANCHORS = 64
#: Bytes of tokens before and after the digit tokens that are read (tokens are short).
TOKEN_WINDOW = 8192
#: How far before the token table the markers (and Debian 6.1's seqs_of_names) may start.
MARKER_WINDOW = 3 * MAX_SYMS + 64 * 1024
#: The last block of 256 names is never longer than this.
LAST_BLOCK_MAX = 256 * 520
#: Two markers 256 names apart differ by at least 2 bytes a name (a length and a token) ...
MIN_MARKER_STEP = 2 * 256
#: ... and by less than this (256 names of at most ~512 bytes).
MAX_MARKER_STEP = 256 * 520
#: ``kallsyms_markers[0]`` (0) and ``[1]`` (512 up to ``MAX_MARKER_STEP``, big-endian).
_MARKERS_START = re.compile(rb"\0\0\0\0(?=\0(?:[\x01\x02]|\0[\x02-\xff]))", re.DOTALL)
#: Places that look like the start of the markers that are tried, nearest the tokens first
#: (the nearest is the right one in every sample; these bound the work on hostile memory).
MAX_MARKER_CANDIDATES = 32
#: Token tables with a matching index that are followed up (a kernel has one).
MAX_TABLES = 4
#: Bytes of the kernel's type letters (the first character of every expanded name).
_TYPE_LETTERS = frozenset(b"ABCDGINRSTUVWabcdginrstuvw?")


@dataclass(frozen=True, slots=True)
class FoundKallsyms:
    """kallsyms tables found by content.

    Attributes:
        tables: the tables, as :func:`parsers.symbols.kallsyms.read_kallsyms` decodes them.
        markers: address of ``kallsyms_markers``.
        seqs_of_names: address of ``kallsyms_seqs_of_names`` when it lies before the token
            table (Debian's 6.1), else None (not searched where the layout puts it after).
        count: ``kallsyms_num_syms``.
        layout: which ``scripts/kallsyms.c`` output order the tables follow.
    """

    tables: KallsymsTables
    markers: int
    seqs_of_names: int | None
    count: int
    layout: str


def scan_kallsyms(read: Reader, start: int, limit: int = SCAN_LIMIT) -> FoundKallsyms:
    """Find the kallsyms tables in the ``limit`` bytes of kernel memory from ``start``.

    Args:
        read: reads kernel virtual memory (raises DumpError).
        start: where the kernel image starts (``_stext``/``_text``).
        limit: how many bytes to search at most (the search stops at unreadable memory).

    Raises:
        SymbolError: no tables, several, or tables that are not consistent.
    """
    anchors = _anchors(read, start, limit)
    if not anchors:
        raise SymbolError(
            f"no kallsyms_token_table in the {limit >> 20} MiB of kernel memory from "
            f"0x{start:x} (no run of digit tokens)"
        )
    tables: dict[int, tuple[int, int, list[bytes]]] = {}
    for anchor in anchors:
        try:
            table, index, tokens = _token_table(read, anchor, start)
        except SymbolError:
            continue
        tables.setdefault(table, (table, index, tokens))
    if not tables:
        raise SymbolError(
            f"none of the {len(anchors)} runs of digit tokens from 0x{start:x} is in a "
            "kallsyms_token_table with a kallsyms_token_index that matches its tokens"
        )
    if len(tables) > MAX_TABLES:
        raise SymbolError(f"more than {MAX_TABLES} kallsyms_token_tables from 0x{start:x}")
    found: list[FoundKallsyms] = []
    problems: list[str] = []
    for table, index, tokens in tables.values():
        try:
            found.append(_tables_around(read, start, table, index, tokens))
        except SymbolError as exc:
            problems.append(exc.message)
    if len(found) > 1:
        where = ", ".join(f"0x{f.tables.token_table:x}" for f in found)
        raise SymbolError(f"several kallsyms tables in memory ({where}): none is used")
    if not found:
        raise SymbolError("; ".join(problems))
    return found[0]


def _chunks(read: Reader, start: int, limit: int) -> Iterator[tuple[int, bytes]]:
    """The readable memory from ``start``, chunk by chunk, until ``limit`` or a hole."""
    pos, end = start, start + limit
    while pos < end:
        size = min(CHUNK, end - pos)
        try:
            yield pos, read(pos, size)
        except DumpError:
            # The end of the image lies in this chunk: what is readable of it, page by page.
            step = 4096
            parts = []
            for at in range(pos, pos + size, step):
                try:
                    parts.append(read(at, min(step, pos + size - at)))
                except DumpError:
                    break
            if parts:
                yield pos, b"".join(parts)
            return
        pos += size


def _anchors(read: Reader, start: int, limit: int) -> list[int]:
    """Addresses of the digit token "0" wherever the digit run occurs."""
    out: list[int] = []
    tail, tail_at = b"", start
    for at, data in _chunks(read, start, limit):
        seam = tail + data[: len(ANCHOR)]  # a run across two chunks
        for buf, base in ((seam, tail_at), (data, at)):
            for match in _ANCHOR.finditer(buf):
                pos = match.start()
                before = buf[pos - 1 : pos] if pos else seam[len(tail) - 1 : len(tail)]
                if before == b"\0" and base + pos not in out:
                    out.append(base + pos)
                if len(out) > MAX_ANCHORS:
                    raise SymbolError(
                        f"more than {MAX_ANCHORS} runs of digit tokens from 0x{start:x}: "
                        "not searching kallsyms in this memory"
                    )
        tail, tail_at = data[-len(ANCHOR) :], at + len(data) - min(len(ANCHOR), len(data))
    return out


def _read_clamped(read: Reader, lo: int, hi: int, floor: int) -> tuple[int, bytes]:
    """``[max(lo, floor), hi)``, shortened at the top until readable."""
    lo = max(lo, floor)
    while hi > lo:
        try:
            return lo, read(lo, hi - lo)
        except DumpError:
            hi = lo + (hi - lo) // 2
    raise SymbolError(f"kernel memory at 0x{lo:x} is unreadable")


def _token_table(read: Reader, anchor: int, floor: int) -> tuple[int, int, list[bytes]]:
    """(``kallsyms_token_table``, ``kallsyms_token_index``, tokens) around a digit run."""
    base, buf = _read_clamped(read, anchor - TOKEN_WINDOW, anchor + TOKEN_WINDOW + 520, floor)
    pos = anchor - base
    for _ in range(0x30, 0x100):
        end = buf.find(b"\0", pos)
        if end <= pos or not _printable(buf[pos:end]):
            raise SymbolError(f"0x{anchor:x}: the digit tokens are not followed by tokens")
        pos = end + 1
    end_of_table = base + pos
    results: list[tuple[int, int, list[bytes]]] = []
    for align in (2, 4, 8):
        index_at = -(-end_of_table // align) * align
        offset = index_at - base
        if offset + 512 > len(buf) or index_at in (r[1] for r in results):
            continue
        index = struct.unpack_from(">256H", buf, offset)
        table = anchor - index[0x30]
        if table < base or index[0] != 0:
            continue
        tokens = _tokens_at(buf, table - base, index, end_of_table - base)
        if tokens is not None:
            results.append((table, index_at, tokens))
    if len(results) != 1:
        raise SymbolError(
            f"0x{anchor:x}: tokens without a kallsyms_token_index that matches their boundaries"
        )
    return results[0]


def _tokens_at(buf: bytes, table: int, index: tuple[int, ...], end: int) -> list[bytes] | None:
    """The 256 tokens when ``index`` hits every boundary of the table ending at ``end``."""
    tokens = []
    for i in range(256):
        start = table + index[i]
        stop = table + index[i + 1] - 1 if i < 255 else end - 1
        if stop <= start or buf[stop] != 0:
            return None
        token = buf[start:stop]
        if not _printable(token) or (len(token) == 1 and token[0] != i):
            return None  # a single character keeps its own code; merged pairs take others
        tokens.append(token)
    return tokens


def _printable(token: bytes) -> bool:
    return bool(token) and all(0x20 < c < 0x7F for c in token)


def _words(data: bytes) -> array[int]:
    """Big-endian u32 words."""
    words = array("I", data[: len(data) & ~3])
    if sys.byteorder == "little":
        words.byteswap()
    return words


def _tables_around(
    read: Reader, floor: int, table: int, index: int, tokens: list[bytes]
) -> FoundKallsyms:
    """Markers, names, count and offsets that belong to this token table."""
    lo, before = _read_clamped(read, table - MARKER_WINDOW, table, floor)
    skip = (-lo) % 4
    words = _words(before[skip:])
    letters = bytes(1 if tok[0] in _TYPE_LETTERS else 0 for tok in tokens)
    problems = []
    starts = [m.start() for m in _MARKERS_START.finditer(before) if (lo + m.start()) % 4 == 0]
    for pos in reversed(starts[-MAX_MARKER_CANDIDATES:]):
        k = (pos - skip) // 4
        run = 1
        while (
            k + run < len(words)
            and MIN_MARKER_STEP <= words[k + run] - words[k + run - 1] <= MAX_MARKER_STEP
        ):
            run += 1
        for m in (run, run - 1):
            if m < 2:
                continue
            try:
                return _with_markers(
                    read, floor, table, index, tokens, letters, lo + pos, words[k : k + m]
                )
            except SymbolError as exc:
                problems.append(exc.message)
    detail = f" ({problems[0]})" if problems else ""
    raise SymbolError(f"no kallsyms_markers/names before the token table at 0x{table:x}{detail}")


def _with_markers(
    read: Reader,
    floor: int,
    table: int,
    index: int,
    tokens: list[bytes],
    letters: bytes,
    markers_at: int,
    markers: array[int],
) -> FoundKallsyms:
    m = len(markers)
    markers_end = markers_at + 4 * m
    gap = table - markers_end
    counts = range(256 * (m - 1) + 1, 256 * m + 1)
    seqs: int | None = None
    if gap < 0 or (gap < 8 and any(read(markers_end, gap))):
        raise SymbolError(f"0x{markers_at:x}: no padding between the markers and the tokens")
    if gap >= 8:  # seqs_of_names between the markers and the token table (Debian 6.1)
        seqs = -(-markers_end // 8) * 8
        low, high = -(-(table - 7 - seqs) // 3), (table - seqs) // 3
        counts = range(max(counts.start, low), min(counts.stop, high + 1))
        if not counts:
            raise SymbolError(f"0x{markers_at:x}: {m} markers but {gap} bytes before the tokens")
    last = markers[-1]
    if last > MAX_NAMES_BYTES:
        raise SymbolError(f"0x{markers_at:x}: markers beyond {MAX_NAMES_BYTES >> 20} MiB of names")
    top = markers_at - last - 4  # num_syms lies at least the last markers' distance before
    lo, region = _read_clamped(read, top - LAST_BLOCK_MAX, top, floor)
    words = _words(region[(-lo) % 4 :])
    lo4 = lo + (-lo) % 4
    for k in range(len(words) - 1, -1, -1):
        count = words[k]
        if count not in counts:
            continue
        num_syms = lo4 + 4 * k
        for names in dict.fromkeys((num_syms + 4, -(-(num_syms + 4) // 8) * 8)):
            blob = _names_blob(read, names, markers_at)
            if blob is not None and _names_fit(blob, count, markers, letters):
                return _with_names(read, table, index, markers_at, seqs, num_syms, names, count)
    raise SymbolError(f"0x{markers_at:x}: no kallsyms_num_syms/names ending at these markers")


def _names_blob(read: Reader, names: int, markers_at: int) -> bytes | None:
    try:
        return read(names, markers_at - names)
    except DumpError:
        return None


def _names_fit(blob: bytes, count: int, markers: array[int], letters: bytes) -> bool:
    """``count`` names walked from the start hit every marker, start with a type letter and
    end in the padding before the markers."""
    pos, size = 0, len(blob)
    marker = 0
    for n in range(count):
        if n & 0xFF == 0:
            if markers[marker] != pos:
                return False
            marker += 1
        if pos + 3 > size:
            return False
        length = blob[pos]
        if length & 0x80:
            length = (length & 0x7F) | (blob[pos + 1] << 7)
            pos += 1
        pos += 1
        if not length or not letters[blob[pos]]:
            return False
        pos += length
    return marker == len(markers) and 0 <= size - pos < 8 and not any(blob[pos:])


def _with_names(
    read: Reader,
    table: int,
    index: int,
    markers: int,
    seqs: int | None,
    num_syms: int,
    names: int,
    count: int,
) -> FoundKallsyms:
    """Where the offsets are: before num_syms (<= 6.1) or after the token index (6.2+)."""
    layouts: list[tuple[str, int, int | None]] = []
    if num_syms % 8 == 0:  # offsets, relative_base, num_syms, names, ... (5.10, 6.1)
        before = num_syms - 8
        offsets = before - 4 * count
        offsets -= offsets % 8
        if _base_relative(read, offsets, count, before):
            layouts.append(("offsets before names (5.x-6.1)", offsets, before))
    for offsets in dict.fromkeys((index + 512, -(-(index + 512) // 8) * 8)):
        after = -(-(offsets + 4 * count) // 8) * 8
        if _base_relative(read, offsets, count, after):
            layouts.append(("offsets after the token index (6.2-6.x)", offsets, after))
        if _self_relative(read, offsets, count):
            layouts.append(("self-relative offsets after the token index (7.x)", offsets, None))
    if len(layouts) != 1:
        what = "no" if not layouts else f"{len(layouts)} candidate"
        raise SymbolError(
            f"kallsyms_names at 0x{names:x} ({count} names): {what} kallsyms_offsets table "
            "of that many sorted entries"
        )
    layout, offsets, base = layouts[0]
    tables = KallsymsTables(
        names=names,
        num_syms=num_syms,
        token_table=table,
        token_index=index,
        offsets=offsets,
        relative_base=base,
    )
    return FoundKallsyms(tables, markers, seqs, count, layout)


def _offsets(read: Reader, at: int, count: int, signed: bool) -> array[int] | None:
    try:
        raw = read(at, 4 * count)
    except DumpError:
        return None
    values = array("i" if signed else "I", raw)
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _base_relative(read: Reader, at: int, count: int, base: int) -> bool:
    """``count`` u32 offsets from ``kallsyms_relative_base`` (the lowest address: the first
    offset is 0), sorted, with only padding up to the base."""
    values = _offsets(read, at, count, signed=False)
    if values is None or values[0] != 0:
        return False
    try:
        pad = read(at + 4 * count, base - at - 4 * count)
    except DumpError:
        return False
    return not any(pad) and all(map(le, values, islice(values, 1, None)))


def _self_relative(read: Reader, at: int, count: int) -> bool:
    """``count`` s32 offsets, each from its own slot, to sorted addresses below the table."""
    values = _offsets(read, at, count, signed=True)
    if values is None or values[0] >= 0:
        return False
    addresses = [at + 4 * i + v for i, v in enumerate(values)]
    return all(map(le, addresses, islice(addresses, 1, None)))


__all__ = ["FoundKallsyms", "scan_kallsyms"]
