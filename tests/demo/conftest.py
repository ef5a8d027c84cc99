from __future__ import annotations

from pathlib import Path

import pytest

from streamer.demo.checkpoint import demo_model_dir


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """The trained demo model shipped in the package (what `make run` and every default command use)."""
    path = demo_model_dir()
    assert path is not None, "the demo model is not installed (make demo-model)"
    return path
