from __future__ import annotations

from pathlib import Path

import pytest
from media._gen import write_media


@pytest.fixture(scope="session")
def engine(bundled):
    """An engine on the bundled model (fp32); sessions are closed by the pipeline."""
    from streamer.engine.engine import Engine

    loaded, tok = bundled
    return Engine(loaded, tok)


@pytest.fixture(scope="session")
def talk(tmp_path_factory) -> Path:
    """64 s of 96x64 H.264 + AAC whose colour and tone change every second."""
    return write_media(tmp_path_factory.mktemp("talk") / "talk.mp4", duration_s=64.0, fps=2, size=(96, 64))
