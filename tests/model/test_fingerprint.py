"""streamer.model.fingerprint: any changed byte changes the fingerprint; files are hashed once."""

from __future__ import annotations

import os
import shutil

import pytest

from streamer.errors import CheckpointError
from streamer.model import fingerprint
from streamer.model.fingerprint import CACHE_NAME, checkpoint_files, checkpoint_fingerprint


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def model(bundled_dir, tmp_path):
    return shutil.copytree(bundled_dir, tmp_path / "model")


def _flip_a_weight_byte(path):
    """Change one byte of tensor data in place (same size); keep the mtime, so only the content tells."""
    weights = path / "model.safetensors"
    st = weights.stat()
    with open(weights, "r+b") as f:
        f.seek(st.st_size - 3)
        byte = f.read(1)
        f.seek(st.st_size - 3)
        f.write(bytes([byte[0] ^ 0x01]))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_any_weight_byte_changes_it_even_with_the_same_size_and_mtime(home, model):
    before = checkpoint_fingerprint(model, "float32")
    assert before == checkpoint_fingerprint(model, "torch.float32")  # cached, and dtype spelled either way
    _flip_a_weight_byte(model)
    assert checkpoint_fingerprint(model, "float32") != before  # ctime/inode caught the rewrite


def test_dtype_config_and_template_change_it(home, model):
    base = checkpoint_fingerprint(model, "float32")
    assert checkpoint_fingerprint(model, "bfloat16") != base
    (model / "chat_template.jinja").write_text((model / "chat_template.jinja").read_text() + " ")
    after_template = checkpoint_fingerprint(model, "float32")
    assert after_template != base
    config = model / "config.json"
    config.write_text(config.read_text().replace("{", "{ ", 1))
    assert checkpoint_fingerprint(model, "float32") not in (base, after_template)


def test_files_are_hashed_once_then_cached_in_streamer_home(home, model, monkeypatch):
    checkpoint_fingerprint(model, "float32")
    assert (home / CACHE_NAME).is_file()
    hashed = []
    original = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda f: hashed.append(f.name) or original(f))
    checkpoint_fingerprint(model, "float32")
    assert hashed == []
    (home / CACHE_NAME).write_text("{not json")  # a damaged cache is ignored, then rewritten
    checkpoint_fingerprint(model, "float32")
    assert "model.safetensors" in hashed


def test_sharded_checkpoints_hash_every_shard(home, checkpoint_factory):
    path = checkpoint_factory("odd-pattern-rope", shard_size="20KB")
    names = [f.name for f in checkpoint_files(path)]
    assert "model.safetensors.index.json" in names and sum(n.startswith("model-") for n in names) > 1


def test_unwritable_home_still_fingerprints(model, tmp_path, monkeypatch):
    (tmp_path / "home-file").write_text("")
    monkeypatch.setenv("STREAMER_HOME", str(tmp_path / "home-file"))  # a file: the cache cannot be written
    assert len(checkpoint_fingerprint(model, "float32")) == 64


def test_missing_weights_are_a_checkpoint_error(home, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        checkpoint_fingerprint(tmp_path, "float32")
