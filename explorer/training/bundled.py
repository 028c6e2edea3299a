"""The bundled sample dumps (the repository's ``samples/real``; a wheel carries one)."""

from __future__ import annotations

from explorer.sources.bundled import DATA_DIR
from parsers.errors import DumpError

#: samples/ of the checkout, or the package data of an installed wheel.
SAMPLES_DIR = DATA_DIR


def default_sample() -> str:
    """The dump ``backchain`` opens when none is named."""
    for candidate in sorted((SAMPLES_DIR / "real").glob("*/vmcore.zst")):
        return str(candidate)
    raise DumpError("no bundled sample found; name a dump file: backchain DUMP")
