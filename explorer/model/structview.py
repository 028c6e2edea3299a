"""A struct in memory, member by member with values (``struct TYPE ADDR``, ``task PID``).

The types come from the kernel's own type graph: the dump's BTF, or the DWARF of
``--vmlinux`` (:mod:`parsers.types.graph`); nothing here knows a layout. Values are decoded
big-endian: integers (bitfields extracted), pointers as addresses (with the symbol they
point at), enums by name, ``char`` arrays as strings, other arrays element by element
(the first :data:`MAX_ELEMENTS`), nested structs and unions as nested values.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from explorer.model.kernel import Kernel
from parsers.errors import DumpError, FormatError, TypeInfoError
from parsers.types.graph import BtfTypes, CType, DwarfTypes, TypeGraph, strip, type_name

#: Array elements shown (the rest summarised).
MAX_ELEMENTS = 64
#: Nesting shown (deeper structs are summarised).
MAX_DEPTH = 12
_CHAR_NAMES = frozenset({"char", "signed char", "unsigned char"})

_GRAPHS: weakref.WeakKeyDictionary[Kernel, TypeGraph] = weakref.WeakKeyDictionary()


def type_graph(kernel: Kernel) -> TypeGraph:
    """The kernel's type graph: ``--vmlinux`` DWARF, else the dump's BTF (cached).

    Raises:
        TypeInfoError: neither is available.
    """
    known = _GRAPHS.get(kernel)
    if known is not None:
        return known
    graph: TypeGraph | None = None
    if kernel.files.vmlinux:
        try:
            graph = DwarfTypes(kernel.files.vmlinux)
        except TypeInfoError:
            graph = None
    if graph is None and kernel.symbols is not None:
        start = kernel.symbols.address_of("__start_BTF")
        stop = kernel.symbols.address_of("__stop_BTF")
        if start is not None and stop is not None and 0 < stop - start <= 64 << 20:
            graph = BtfTypes(kernel.read(start, stop - start), "btf:dump")
    if graph is None:
        raise TypeInfoError(
            "no type graph: this kernel has no BTF in the dump; pass --vmlinux with debug "
            "info (the -dbg package's vmlinux)",
            kernel.path,
        )
    _GRAPHS[kernel] = graph
    return graph


def type_notes(kernel: Kernel) -> list[str]:
    """What the kernel's type graph, if one was opened, says about how it was read (DWARF
    that backchain's reader left to pyelftools)."""
    graph = _GRAPHS.get(kernel)
    return [] if graph is None else list(graph.notes)


@dataclass(frozen=True)
class Value:
    """One value read from memory.

    Attributes:
        name: member name (None for an anonymous struct/union, "" for the top).
        type: its C type spelled out.
        address: where it lies.
        kind: "int", "ptr", "enum", "string", "array", "struct", "union", "float", "other".
        value: int for int/ptr/enum, str for strings, None for aggregates.
        text: the value as printed (``0x…``, ``"swapper/0"``, ``TASK_RUNNING``).
        children: members or elements.
        more: elements or levels left out.
    """

    name: str | None
    type: str
    address: int
    kind: str
    value: int | str | float | None
    text: str
    children: tuple[Value, ...] = ()
    more: int = 0


def read_struct(kernel: Kernel, type_spec: str, address: int) -> Value:
    """``type_spec`` (``task_struct``, ``struct list_head``, a typedef) at ``address``.

    Raises:
        DumpError: unknown type, no type graph, or unreadable memory.
    """
    graph = type_graph(kernel)
    type_id = find_type(graph, type_spec)
    if type_id is None:
        raise DumpError(f"no type {type_spec!r} in {graph.source}", kernel.path)
    t = strip(graph, type_id)
    if t.size is None:
        raise DumpError(f"{type_spec!r} has no size (incomplete type)", kernel.path)
    raw = kernel.read(address, t.size)
    return _value(kernel, graph, type_id, raw, 0, address, "", 0)


def find_type(graph: TypeGraph, spec: str) -> int | None:
    """``struct X``, ``union X``, ``enum X``, or a bare name (struct, union, typedef)."""
    words = spec.split()
    if len(words) == 2 and words[0] in ("struct", "union", "enum"):
        return graph.find(words[1], (words[0],))
    return graph.find(spec, ("struct", "union", "typedef", "enum"))


def _int(raw: bytes, offset: int, size: int, signed: bool) -> int:
    return int.from_bytes(raw[offset : offset + size], "big", signed=signed)


def _value(
    kernel: Kernel,
    graph: TypeGraph,
    type_id: int,
    raw: bytes,
    bit_offset: int,
    base: int,
    name: str | None,
    depth: int,
    bit_size: int = 0,
) -> Value:
    spelled = type_name(graph, type_id)
    t = strip(graph, type_id)
    offset = bit_offset // 8
    address = base + offset
    if bit_size:
        storage = t.size or 8
        word = _int(raw, offset, storage, False)
        shift = storage * 8 - (bit_offset % 8) - bit_size  # big-endian: bits from the MSB
        v = (word >> shift) & ((1 << bit_size) - 1) if shift >= 0 else 0
        if t.signed and v >> (bit_size - 1):
            v -= 1 << bit_size
        return Value(name, f"{spelled} :{bit_size}", address, "int", v, str(v))
    if t.kind == "int":
        v = _int(raw, offset, t.size or 0, t.signed)
        if t.size == 1 and t.name and "char" in t.name and 32 <= v < 127 and t.name != "_Bool":
            return Value(name, spelled, address, "int", v, f"{v} '{chr(v)}'")
        if t.size == 8 and not t.signed and v >= kernel.memory_size and kernel.readable(v):
            # an address kept in an unsigned long (thread.ksp, a stack pointer): hex. Only
            # beyond the identity map of RAM, where a counter's value is no address.
            return Value(name, spelled, address, "int", v, f"0x{v:x}")
        return Value(name, spelled, address, "int", v, str(v))
    if t.kind == "enum":
        v = _int(raw, offset, t.size or 4, t.signed)
        label = next((n for n, val in t.enumerators if val == v), str(v))
        return Value(name, spelled, address, "enum", v, label)
    if t.kind == "ptr":
        v = _int(raw, offset, t.size or 8, False)
        text = f"0x{v:x}"
        target = strip(graph, t.target or 0)
        if v and kernel.symbols is not None and target.kind in ("func", "void", "int"):
            sym = kernel.symbols.lookup(v)
            if sym is not None:
                text += f" <{str(sym).split('/', 1)[0]}>"
        return Value(name, spelled, address, "ptr", v, text)
    if t.kind == "float":
        return Value(
            name, spelled, address, "float", None, raw[offset : offset + (t.size or 0)].hex()
        )
    if t.kind == "array":
        element = strip(graph, t.target or 0)
        size = element.size or 0
        if element.kind == "int" and size == 1 and (element.name or "") in _CHAR_NAMES:
            data = raw[offset : offset + t.count]
            text = data.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
            return Value(name, spelled, address, "string", text, f'"{text}"')
        shown = min(t.count, MAX_ELEMENTS)
        if depth >= MAX_DEPTH or size == 0:
            return Value(name, spelled, address, "array", None, "{...}", (), t.count)
        kids = tuple(
            _value(
                kernel,
                graph,
                t.target or 0,
                raw,
                bit_offset + 8 * size * i,
                base,
                f"[{i}]",
                depth + 1,
            )
            for i in range(shown)
        )
        return Value(name, spelled, address, "array", None, "", kids, t.count - shown)
    if t.kind in ("struct", "union"):
        if depth >= MAX_DEPTH:
            return Value(name, spelled, address, t.kind, None, "{...}", (), 1)
        kids = tuple(
            _value(
                kernel,
                graph,
                m.type,
                raw,
                bit_offset + m.bit_offset,
                base,
                m.name,
                depth + 1,
                m.bit_size,
            )
            for m in t.members
            if (bit_offset + m.bit_offset) // 8 < len(raw)
        )
        return Value(name, spelled, address, t.kind, None, "", kids)
    return Value(name, spelled, address, "other", None, f"<{t.kind}>")


def value_lines(v: Value, indent: str = "") -> list[str]:
    """crash/gdb style: ``name = value,`` with nested ``{ … }``."""
    lines: list[str] = []
    label = "" if not v.name else f"{v.name} = "
    if v.kind in ("struct", "union", "array") and (v.children or not v.text):
        lines.append(f"{indent}{label}{{")
        for c in v.children:
            lines.extend(value_lines(c, indent + "  "))
        if v.more:
            lines.append(f"{indent}  ... ({v.more} more)")
        lines.append(f"{indent}}},")
        return lines
    lines.append(f"{indent}{label}{v.text},")
    return lines


def value_json(v: Value) -> Any:
    """Member names as keys (anonymous members' members lifted, as C names them)."""
    if v.kind in ("struct", "union"):
        out: dict[str, Any] = {}
        for c in v.children:
            if c.name is None:
                inner = value_json(c)
                if isinstance(inner, dict):
                    out.update(inner)
            else:
                out[c.name] = value_json(c)
        return out
    if v.kind == "array":
        if not v.children and v.text:
            return v.text
        return [value_json(c) for c in v.children]
    if v.kind == "ptr":
        return f"0x{v.value:x}" if isinstance(v.value, int) else None
    if v.kind == "enum":
        return v.text
    return v.value


def member(v: Value, path: str) -> Value | None:
    """The member at ``a.b.c`` (anonymous members searched through)."""
    current: Value | None = v
    for part in path.split("."):
        if current is None:
            return None
        current = _child(current, part)
    return current


def _child(v: Value, name: str) -> Value | None:
    for c in v.children:
        if c.name == name:
            return c
        if c.name is None:
            found = _child(c, name)
            if found is not None:
                return found
    return None


__all__ = ["Value", "find_type", "member", "read_struct", "type_graph", "value_json", "value_lines"]

_ = (CType, FormatError)
