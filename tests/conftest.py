"""Suite-wide set-up: model conversions go to a temporary model folder, never ~/.cache."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_MODEL_DIR = tempfile.mkdtemp(prefix="ldl-models-")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LDL_MODEL_DIR", _MODEL_DIR)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_MODEL_DIR, ignore_errors=True)
