"""Fixtures for the token store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .store_helpers import write_store


@pytest.fixture
def local_store(tmp_path: Path) -> tuple[Path, list[str]]:
    store = tmp_path / "store"
    return store, write_store(str(store))
