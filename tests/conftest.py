"""Shared pytest fixtures and paths."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def datasets() -> Path:
    """Root of the shared real datasets (../shared/datasets); fails loudly if absent."""
    assert DATASETS.is_dir(), f"shared datasets not found at {DATASETS}"
    return DATASETS
