"""Frames -> function, source line and inline chain, from the vmlinux's DWARF.

A return address is looked up at ``R-1`` (the call instruction, which may lie in an inline
function whose code ends at the call), an interrupted frame's PSW address as it is: the same
rule as the kernel's own symbolizer and drgn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parsers.dwarf.lines import DwarfLines, Location, SourceLine, open_dwarf_lines
from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Step

#: Frames whose ip is where the CPU was interrupted, not a return address.
EXACT_HOW = frozenset({"start_regs", "pt_regs"})


@dataclass(frozen=True, slots=True)
class FrameLines:
    """What the DWARF says about one frame.

    Attributes:
        lookup: the address looked up (runtime, ``ip - 1`` for a return address).
        function: the subprogram containing it, or None.
        source: ``path:line`` in ``function`` (the call site of the outermost inline
            function when there are some), or None.
        inlined: inline functions at the address, innermost first.
        why: why ``function`` is None (no DWARF, a module address, ...) or is a symbol name
            rather than a DWARF subprogram (assembly code), else None.
    """

    lookup: int
    function: str | None
    source: SourceLine | None
    inlined: tuple[Any, ...]
    why: str | None = None


def lookup_address(step_how: str, ip: int) -> int:
    """The address to look up for a frame: ``ip - 1`` unless the frame was interrupted."""
    return ip if step_how in EXACT_HOW else ip - 1


class FrameSource:
    """Source lines for one kernel's frames; :meth:`open` it, ``with`` closes it.

    When the DWARF is missing or does not belong to the dump, every frame gets None and
    :attr:`why` says why.
    """

    def __init__(
        self,
        dwarf: DwarfLines | None,
        delta: int,
        why: str | None,
        source_dir: str | None = None,
        kernel: Kernel | None = None,
    ) -> None:
        self.dwarf = dwarf
        self.delta = delta
        self.why = why
        self.source_dir = source_dir
        self.kernel = kernel
        self.requested = dwarf is not None or (kernel is not None and bool(kernel.files.vmlinux))
        self._memo: dict[int, FrameLines] = {}
        self._files: dict[str, list[str] | None] = {}

    @classmethod
    def open(
        cls, kernel: Kernel, source_dir: str | None = None, cache_dir: str | None = None
    ) -> FrameSource:
        """Open the DWARF of ``kernel.files.vmlinux`` (if any) for the dump's kernel."""
        path = kernel.files.vmlinux
        if not path:
            return cls(None, 0, "no --vmlinux with DWARF (the -dbg package's vmlinux)", source_dir)
        try:
            if any(w.startswith("FORCED: using vmlinux ") for w in kernel.forced):
                dwarf = DwarfLines(path, None)  # used only by --force: fills no cache
            else:
                dwarf = open_dwarf_lines(path, cache_dir)
        except DumpError as error:
            return cls(None, 0, f"cannot use {path}: {error}", source_dir, kernel)
        dump_id = kernel.vmcoreinfo.get("BUILD-ID") if kernel.vmcoreinfo else None
        if dump_id and dwarf.build_id and dump_id != dwarf.build_id:
            dwarf.close()
            return cls(
                None,
                0,
                f"{path} is build-id {dwarf.build_id[:12]}…, the dump's kernel is "
                f"{dump_id[:12]}…: its lines would be wrong",
                source_dir,
                kernel,
            )
        return cls(dwarf, _relocation(kernel, dwarf), None, source_dir, kernel)

    def close(self) -> None:
        if self.dwarf is not None:
            self.dwarf.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def available(self) -> bool:
        return self.dwarf is not None

    def for_step(self, step: Step) -> FrameLines:
        """The function, source line and inline chain of one frame."""
        return self.at(lookup_address(step.how, step.ip))

    def at(self, address: int) -> FrameLines:
        """What the DWARF says about a runtime ``address`` (already ``R-1`` if need be)."""
        known = self._memo.get(address)
        if known is not None:
            return known
        if self.dwarf is None:
            found = FrameLines(address, None, None, (), self.why)
        else:
            try:
                loc: Location = self.dwarf.lookup(address - self.delta)
            except DumpError as error:
                found = FrameLines(address, None, None, (), str(error))
            else:
                why = None
                function = loc.function
                if function is None:
                    function, why = self._symbol_instead(address, loc.source is not None)
                found = FrameLines(address, function, loc.source, loc.inlined, why)
        self._memo[address] = found
        return found

    def _symbol_instead(self, address: int, has_line: bool) -> tuple[str | None, str]:
        """No DWARF subprogram at ``address``: code written in assembly (entry.S) has a line
        row but no subprogram; like addr2line and drgn, name it by its symbol then."""
        kernel = self.kernel
        if kernel is not None:
            module = kernel.modules.module_at(address)
            if module is not None:
                return None, f"in module {module.name}: the vmlinux has no DWARF for modules"
            sym = kernel.symbols.lookup(address) if kernel.symbols is not None else None
            if sym is not None:
                if has_line:
                    return sym.name, "assembly without a DWARF subprogram: named by its symbol"
                return sym.name, "no debug information for this code: named by its symbol"
        return None, "no DWARF subprogram covers this address"

    def text_of(self, source: SourceLine, context: int = 0) -> list[tuple[int, str]]:
        """Lines ``line - context .. line + context`` of ``source`` from ``source_dir``."""
        if not self.source_dir:
            return []
        lines = self._files.get(source.path, [])
        if lines == []:
            lines = self._read(source.path)
            self._files[source.path] = lines
        if not lines:
            return []
        first = max(1, source.line - context)
        last = min(len(lines), source.line + context)
        return [(n, lines[n - 1]) for n in range(first, last + 1)]

    def _read(self, path: str) -> list[str] | None:
        """The file's lines, from ``source_dir``. A path outside the build directory
        (``/build/linux-6.1/arch/s390/kernel/entry.S``) is tried without its leading
        directories until it names a file of the tree."""
        assert self.source_dir is not None
        root = os.path.realpath(self.source_dir)
        parts = [p for p in path.split("/") if p and p != "."]
        for k in range(len(parts) if os.path.isabs(path) else 1):
            full = os.path.realpath(os.path.join(root, *parts[k:]))
            if not full.startswith(root + os.sep):
                continue  # a path leaving the tree
            try:
                with open(full, encoding="utf-8", errors="replace") as f:
                    return f.read(4 << 20).splitlines()
            except OSError:
                continue
        return None


def _relocation(kernel: Kernel, dwarf: DwarfLines) -> int:
    """Runtime minus link-time address (KASLR), from ``_stext``."""
    linked = dwarf.stext
    if linked is None:
        return 0
    runtime = None
    if kernel.vmcoreinfo is not None:
        runtime = kernel.vmcoreinfo.symbol("_stext")
    if runtime is None and kernel.symbols is not None:
        runtime = kernel.symbols.address_of("_stext")
    return 0 if runtime is None else runtime - linked


# -- faces: JSON and text ------------------------------------------------------------------------
def frame_json(lines: FrameLines) -> dict[str, Any]:
    """``function``, ``source``, ``inlined`` of a frame (null when unknown)."""
    return {
        "function": lines.function,
        "source": None if lines.source is None else str(lines.source),
        "inlined": None
        if lines.function is None
        else [
            {"function": f.function, "source": None if f.source is None else str(f.source)}
            for f in lines.inlined
        ],
    }


def add_to_walk_json(doc: dict[str, Any], steps: Any, source: FrameSource) -> dict[str, Any]:
    """Add the fields of :func:`frame_json` to each frame of a ``bt --json`` document."""
    for frame, step in zip(doc.get("frames", ()), steps, strict=False):
        frame.update(frame_json(source.for_step(step)))
        inter = interrupted_lines(source, step)
        if inter is not None:
            frame["interrupted_lines"] = frame_json(inter)
    doc["lines"] = {"available": source.available, "why": source.why}
    return doc


def interrupted_lines(source: FrameSource, step: Step) -> FrameLines | None:
    """For a CPU stopped on an interrupt handler's first instruction: the lines of the
    context it interrupted (its lowcore's old PSW, an exact address), else None."""
    kernel = source.kernel
    if kernel is None or source.dwarf is None or step.how not in EXACT_HOW:
        return None
    from explorer.code.interrupted import cpu_of_step, interrupted_context

    cpu = cpu_of_step(kernel, step)
    inter = interrupted_context(kernel, cpu) if cpu is not None else None
    return None if inter is None else source.at(inter.address)


def frame_text(source: FrameSource, step: Step, indent: str = "    ") -> list[str]:
    """crash ``bt -l`` lines under a frame: inline functions innermost first, each
    ``path: line  (inlined NAME)``, then the function's own ``path: line``; for a CPU
    stopped on a handler's first instruction, the interrupted context's first."""
    out = []
    inter = interrupted_lines(source, step)
    if inter is not None and inter.function is not None:
        for f in inter.inlined:
            out.append(f"{indent}{_where(f.source)}  (interrupted, inlined {f.function})")
        out.append(f"{indent}{_where(inter.source)}  (interrupted in {inter.function})")
    return out + _frame_lines_text(source, step, indent)


def _where(place: SourceLine | None) -> str:
    return "?" if place is None else f"{place.path}: {place.line}"


def _frame_lines_text(source: FrameSource, step: Step, indent: str) -> list[str]:
    lines = source.for_step(step)
    if lines.function is None:
        return [f"{indent}(no source line: {lines.why})"] if source.available else []
    out = []
    for f in lines.inlined:
        where = "?" if f.source is None else f"{f.source.path}: {f.source.line}"
        out.append(f"{indent}{where}  (inlined {f.function})")
        out.extend(_code_lines(source, f.source, indent))
    if lines.source is None:
        out.append(f"{indent}(no source line: {lines.why or 'no line row'})")
    else:
        out.append(f"{indent}{lines.source.path}: {lines.source.line}")
    out.extend(_code_lines(source, lines.source, indent))
    return out


def _code_lines(source: FrameSource, where: SourceLine | None, indent: str) -> list[str]:
    if where is None:
        return []
    return [f"{indent}  {n:>6}  {text.rstrip()}" for n, text in source.text_of(where)]


def unavailable_text(source: FrameSource) -> list[str]:
    """One line saying why there are no source lines (empty when there are)."""
    return [] if source.available else [f"source lines: none ({source.why})"]
