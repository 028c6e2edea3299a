"""A dump's BTF profile is cached under a digest of the blob: the cached profile equals the
one built from the BTF (on the real 6.12 and 7.2 samples), other bytes are a miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.opening import open_kernel
from parsers.types.profile import _profile_from_btf, profile_from_btf

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


def _btf(name: str) -> tuple[bytes, str | None]:
    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    try:
        syms = kernel.symbols
        assert syms is not None
        start, stop = syms.require("__start_BTF"), syms.require("__stop_BTF")
        return kernel.image.read(start, stop - start), kernel.release
    finally:
        kernel.close()


@pytest.mark.parametrize("name", ["bpo12-6.12-busy", "sid-7.2-modules"])
def test_cached_btf_profile_equals_the_built_one(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, release = _btf(name)
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path))
    built = _profile_from_btf(data, release, None, 16384, "btf:dump")
    first = profile_from_btf(data, release, source="btf:dump", thread_size=16384)
    files = list((tmp_path / "profiles").glob("btf-*.profile.json"))
    assert len(files) == 1
    again = profile_from_btf(data, release, source="btf:dump", thread_size=16384)
    assert first == built == again
    assert again.has("task_struct.stack") and again.source_of("pt_regs") == "btf:dump"
    changed = bytearray(data)
    changed[-1] ^= 1  # a string byte: the profile may well be the same, the key is not
    profile_from_btf(bytes(changed), release, source="btf:dump", thread_size=16384)
    assert len(list((tmp_path / "profiles").glob("btf-*.profile.json"))) == 2
