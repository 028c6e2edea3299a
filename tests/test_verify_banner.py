"""A vmlinux may carry more than one ``Linux version`` string; the dump's ``linux_banner``
must match one of them, not just the first (Debian's 6.1 has ``# SMP`` from init/version.c
before the linked ``#1 SMP`` banner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from parsers.elf.fileid import all_banners_in, elf_identity
from tests.helpers import oracles

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
_RELEASES = {"deb12-6.1-idle": "6.1.0-50-s390x", "bpo12-6.12-busy": "6.12.95+deb12-s390x"}


def test_all_banners_in_finds_each_copy_in_order() -> None:
    data = (
        b"\0junk Linux version x\0"
        b"Linux version 6.1.0-50-s390x (b@h) # SMP Debian 6.1.176-1\n\0pad"
        b"Linux version 6.1.0-50-s390x (b@h) #1 SMP Debian 6.1.176-1\n\0"
    )
    assert all_banners_in(data) == (
        "Linux version 6.1.0-50-s390x (b@h) # SMP Debian 6.1.176-1",
        "Linux version 6.1.0-50-s390x (b@h) #1 SMP Debian 6.1.176-1",
    )
    assert all_banners_in(b"no banner here") == ()


@pytest.mark.parametrize("sample", sorted(_RELEASES))
def test_the_right_debug_vmlinux_is_accepted(sample: str) -> None:
    vmlinux = oracles.debug_vmlinux(_RELEASES[sample])
    ident = elf_identity(vmlinux)
    assert len(ident.banners) >= 1
    kernel = open_kernel(str(SAMPLES / sample / "vmcore.zst"), Options(vmlinux=str(vmlinux)))
    try:
        assert kernel.symbols is not None and "vmlinux" in kernel.symbols.source
        assert not [w for w in kernel.warnings if "does not belong" in w or "--force" in w]
    finally:
        kernel.close()
