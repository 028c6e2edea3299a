"""Where the bundled data is: the type profiles of the bundled kernels and the sample dumps.

A checkout (or an editable install) uses the repository's ``samples/``; an installed wheel
carries what the tool needs of it as package data under ``explorer/data/`` (the profiles and
one sample dump, see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
#: The repository's samples/ (present in a checkout), else the wheel's package data.
DATA_DIR = (
    _PACKAGE.parent / "samples" if (_PACKAGE.parent / "samples").is_dir() else _PACKAGE / "data"
)
#: Type profiles of the bundled kernels' builds, ``RELEASE.profile.json``.
BUNDLED_PROFILES = DATA_DIR / "profiles"


def bundled_profile(release: str) -> Path | None:
    """The bundled profile of ``release``'s build (by name; the build-id is checked by the
    caller), or None. Chosen among the files there: the release is the dump's word, so it
    picks a name from the list but never makes a path itself (a 300-character OSRELEASE was
    'File name too long')."""
    wanted = f"{release}.profile.json"
    try:
        return next(
            (p for p in BUNDLED_PROFILES.iterdir() if p.name == wanted and p.is_file()), None
        )
    except OSError:
        return None


__all__ = ["BUNDLED_PROFILES", "DATA_DIR", "bundled_profile"]
