"""Where backchain keeps what it derives once and reuses: ``$BACKCHAIN_CACHE`` if set, else
``$XDG_CACHE_HOME/backchain``, else ``~/.cache/backchain``.

Sub-folders: ``dumps`` (decompressed dumps), ``profiles`` (type profiles by build-id, and
by a digest of a dump's BTF), ``symbols`` (symbol tables by build-id), ``code`` (prologue
states of PSW frames, by the function's bytes), ``scenarios`` (built training scenarios),
``real`` (the real-sample generator's work: kernels, -dbg vmlinux files, raw dumps).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "BACKCHAIN_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it); not created here."""
    base = os.environ.get(ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "backchain")
    return Path(base).joinpath(*parts)
