"""Where the bundled samples are (they ship inside the wheel, under ``samples/``)."""

from __future__ import annotations

from pathlib import Path

from parsers.errors import DumpError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


def default_sample() -> str:
    """The dump ``backchain`` opens when none is named."""
    for candidate in sorted((SAMPLES_DIR / "real").glob("*/vmcore.zst")):
        return str(candidate)
    raise DumpError("no bundled sample found; name a dump file: backchain DUMP")
