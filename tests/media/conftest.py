from __future__ import annotations

from pathlib import Path

import pytest

from ._gen import write_media


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def h264_aac(media_dir: Path) -> Path:
    """6 s of 128x96 H.264 (B-frames) at 25 fps + stereo 48 kHz AAC in MP4."""
    return write_media(media_dir / "h264_aac.mp4", duration_s=6.0, fps=25)
