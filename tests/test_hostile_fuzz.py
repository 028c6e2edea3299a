"""A short pass of every hostile-input fuzzer, the saved failing inputs, and the regression
tests of the bugs the fuzzers found.

``make fuzz`` runs the same targets for minutes (tests/fuzz/run.py); here each gets
``BACKCHAIN_FUZZ_SECONDS`` (default 2) so that ``make test`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parsers.errors import SymbolError
from parsers.symbols.table import load_system_map
from tests.fuzz.run import CORPUS, fuzz
from tests.fuzz.targets import TARGETS

SECONDS = float(os.environ.get("BACKCHAIN_FUZZ_SECONDS", "2"))


@pytest.mark.parametrize("name", list(TARGETS))
def test_short_fuzz_pass(name: str) -> None:
    outcome = fuzz(TARGETS[name], SECONDS, corpus=None, database=None)
    assert outcome.failure is None, outcome.failure
    assert outcome.inputs > 0


CORPUS_FILES = sorted(CORPUS.glob("*.bin"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_input_is_handled(path: Path) -> None:
    """Every saved input (``<target>-<sha1>.bin``) replays through its target cleanly."""
    name = path.name.rsplit("-", 1)[0]
    TARGETS[name].check(path.read_bytes())


def test_corpus_names_a_known_target() -> None:
    for path in CORPUS_FILES:
        assert path.name.rsplit("-", 1)[0] in TARGETS, path.name


# -- regressions -----------------------------------------------------------------------------------
def test_system_map_address_beyond_64_bits(tmp_path: Path) -> None:
    """Was an OverflowError from array('Q')."""
    path = tmp_path / "System.map"
    path.write_text("0000000000100000 T _stext\n1" + "0" * 17 + " T big\n0 T a\n0 T b\n")
    with pytest.raises(SymbolError) as info:
        load_system_map(path)
    assert info.value.message == "line 2: address 1" + "0" * 17 + " is not a 64-bit address"


def test_system_map_negative_address(tmp_path: Path) -> None:
    path = tmp_path / "System.map"
    path.write_text("-100 T neg\n0 T a\n0 T b\n")
    with pytest.raises(SymbolError, match="line 1: address -100 is not a 64-bit address"):
        load_system_map(path)
