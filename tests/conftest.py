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


@pytest.fixture(scope="session")
def bundled_dir(tmp_path_factory) -> Path:
    """The tiny random bundled checkpoint, written into a private STREAMER_HOME for the test run.

    It is also made the default model (``STREAMER_MODEL``) of every command the tests run, so
    they test the pipeline on it, not on the trained demo model (tests/demo do that explicitly).
    """
    import os

    from streamer.model.bundled import bundled_model_dir

    home = tmp_path_factory.mktemp("streamer-home")
    os.environ["STREAMER_HOME"] = str(home)
    path = bundled_model_dir()
    os.environ["STREAMER_MODEL"] = str(path)
    return path


@pytest.fixture(scope="session")
def bundled(bundled_dir):
    """(LoadedModel, Tokenizer) of the bundled checkpoint in fp32."""
    from streamer.model.tokenizer import load_tokenizer
    from streamer.model.weights import load_model

    return load_model(bundled_dir, dtype="float32"), load_tokenizer(bundled_dir)
