"""GNU objdump's reading of raw s390x code bytes, the independent truth of the instruction
decoder and the call-site check (``s390x-linux-gnu-objdump -b binary -m s390:64-bit -D``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.helpers import oracles

OBJDUMP = shutil.which("s390x-linux-gnu-objdump")
needs_objdump = oracles.needs("objdump")
_OBJDUMP_LINE = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t?(\S*)\s*(.*)$")


def objdump(data: bytes, address: int, tmp: Path) -> dict[int, tuple[int, str, str]]:
    """objdump's instructions of raw ``data`` at ``address``: {address: (size, mnemonic,
    operands)}."""
    raw = tmp / f"code-{address:x}.bin"
    raw.write_bytes(data)
    vma = [f"--adjust-vma=0x{address:x}"]
    out = subprocess.run(
        [OBJDUMP or "objdump", "-b", "binary", "-m", "s390:64-bit", "-D", *vma, str(raw)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        m = _OBJDUMP_LINE.match(line)
        if m:
            found[int(m.group(1), 16)] = (len(m.group(2).split()), m.group(3), m.group(4))
    return found
