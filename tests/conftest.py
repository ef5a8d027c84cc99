from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from checkpoints import VARIANTS, write_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    made: dict[tuple[str, str | None], Path] = {}

    def make(variant: str = "default", shard_size: str | None = None) -> Path:
        key = (variant, shard_size)
        if key not in made:
            made[key] = write_checkpoint(
                tmp_path_factory.mktemp(f"ckpt-{variant}"), variant, shard_size=shard_size
            )
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(checkpoint_factory) -> Path:
    return checkpoint_factory("default")


__all__ = ["VARIANTS"]
