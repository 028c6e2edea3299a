"""GNU readelf's reading of a vmlinux's ``.debug_frame`` (``s390x-linux-gnu-readelf
--debug-dump=frames-interp``): every FDE's range and its rows, the independent truth of the
CFI parser and of the explanations of ``bt --cfi``."""

from __future__ import annotations

import bisect
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tests.helpers import oracles

_FDE = re.compile(r"^\S+ \S+ \S+ FDE cie=\S+ pc=([0-9a-f]+)\.\.([0-9a-f]+)$")
_CIE = re.compile(r"^\S+ \S+ \S+ CIE ")


@dataclass
class Fde:
    """One FDE: ``[start, end)`` and its rows (address, CFA, {column: rule}); an FDE that
    readelf prints without rows has the CIE's initial row."""

    start: int
    end: int
    rows: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)


@dataclass
class Frames:
    """Every FDE of one vmlinux, sorted, and the CIE's initial CFA."""

    fdes: list[Fde]
    initial_cfa: str

    def __post_init__(self) -> None:
        self.fdes.sort(key=lambda f: f.start)
        self._starts = [f.start for f in self.fdes]

    def nearest(self, address: int) -> Fde | None:
        """The FDE starting at or below ``address`` nearest to it (covering it or not)."""
        i = bisect.bisect_right(self._starts, address) - 1
        return self.fdes[i] if i >= 0 else None

    def rows(self) -> list[tuple[int, str, dict[str, str]]]:
        """Every row of every FDE (address, CFA, {column: rule}), in address order."""
        return [row for fde in self.fdes for row in fde.rows]

    def covering(self, address: int) -> Fde | None:
        fde = self.nearest(address)
        return fde if fde is not None and fde.start <= address < fde.end else None

    def row(self, address: int) -> tuple[str, dict[str, str]] | None:
        """(CFA, {column: rule}) in force at ``address``; None if no FDE covers it."""
        fde = self.covering(address)
        if fde is None:
            return None
        found: tuple[str, dict[str, str]] = (self.initial_cfa, {})
        for loc, cfa, cols in fde.rows:
            if loc > address:
                break
            found = (cfa, cols)
        return found


@cache
def frames(vmlinux: Path) -> Frames:
    """readelf's interpretation of ``vmlinux``'s ``.debug_frame``."""
    out = subprocess.run(
        [oracles.tool("readelf"), "--debug-dump=frames-interp", str(vmlinux)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fdes: list[Fde] = []
    current: Fde | None = None
    in_cie = False
    initial = "r15+160"
    columns: list[str] = []
    for line in out.splitlines():
        m = _FDE.match(line)
        if m:
            current = Fde(int(m.group(1), 16), int(m.group(2), 16))
            fdes.append(current)
            in_cie, columns = False, []
            continue
        if _CIE.match(line):
            current, in_cie, columns = None, True, []
            continue
        words = line.split()
        if not words:
            continue
        if words[0] == "LOC":
            columns = words[2:]
        elif re.fullmatch(r"[0-9a-f]{16}", words[0]):
            if in_cie:
                initial = words[1]
            elif current is not None and columns:
                cols = dict(zip(columns, words[2:], strict=True))
                current.rows.append((int(words[0], 16), words[1], cols))
    return Frames(fdes, initial)
