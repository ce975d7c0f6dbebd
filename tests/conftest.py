"""Shared fixtures: the real data in ../shared/data (tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.datasets import shared_data_dir

DATA = shared_data_dir()
NIR_CNN = DATA / "nir_paper" / "cnn_sinabs.nir"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (clone with ../shared beside the project)")
    return path


@pytest.fixture(scope="session")
def nir_cnn_path() -> Path:
    return need(NIR_CNN)


@pytest.fixture(scope="session")
def nir_cnn(nir_cnn_path):
    import models

    return models.read_nir(nir_cnn_path)


@pytest.fixture(scope="session")
def test100():
    from models.datasets import load_nmnist

    need(DATA / "nmnist_small" / "test100.txt")
    return load_nmnist(samples=100)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
