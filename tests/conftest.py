"""Shared fixtures: synthetic dumps built by explorer.training.synthetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import oracles
from tests.helpers.dumps import two_cpu_dump


@pytest.fixture(scope="session")
def synthetic_2cpu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the 2-CPU synthetic dump (System.map beside it)."""
    return two_cpu_dump(tmp_path_factory.mktemp("synthetic2"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "oracle(*names): needs these independent truths (tests/helpers/oracles.py)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    oracles.check_marks(item)
