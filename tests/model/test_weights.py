"""Checkpoint loading: the real layout, and one clear error for every kind of broken checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from streamer.errors import CheckpointError, ConfigError
from streamer.model.weights import load_model


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _tensors(path):
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_loads_sharded_and_dtypes(checkpoint_factory):
    path = checkpoint_factory("odd-pattern-rope", "100KB")
    assert (path / "model.safetensors.index.json").is_file()
    for dtype, want in (("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        loaded = load_model(path, dtype=dtype)
        assert loaded.dtype == want
        assert all(p.dtype == want for p in loaded.model.parameters())
        assert not any(p.is_meta for p in loaded.model.parameters())


def test_auto_dtype_is_the_checkpoint_dtype(checkpoint_factory):
    assert load_model(checkpoint_factory("bf16"), dtype="auto").dtype == torch.bfloat16


def test_missing_unexpected_and_wrong_shape_listed_in_one_error(tiny_checkpoint, tmp_path):
    path = _copy(tiny_checkpoint, tmp_path / "ck")
    tensors = _tensors(path)
    del tensors["model.language_model.layers.1.mlp.up_proj.weight"]
    tensors["model.language_model.layers.0.self_attn.extra.weight"] = torch.zeros(2)
    tensors["model.language_model.norm.weight"] = torch.zeros(7)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    msg = str(err.value)
    assert "missing tensors (1): model.language_model.layers.1.mlp.up_proj.weight" in msg
    assert "unexpected tensors (1): model.language_model.layers.0.self_attn.extra.weight" in msg
    # Shapes are checked once names agree: fix names, keep the bad shape.
    tensors = _tensors(path)
    tensors.pop("model.language_model.layers.0.self_attn.extra.weight")
    tensors["model.language_model.layers.1.mlp.up_proj.weight"] = torch.zeros(128, 64)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(
        CheckpointError, match=r"wrong-shaped tensors \(1\): model.language_model.norm.weight \(7,\)"
    ):
        load_model(path)


def test_truncated_file(tiny_checkpoint, tmp_path):
    path = _copy(tiny_checkpoint, tmp_path / "ck")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(path)


def test_missing_shard(checkpoint_factory, tmp_path):
    path = _copy(checkpoint_factory("odd-pattern-rope", "100KB"), tmp_path / "ck")
    victim = sorted(path.glob("model-*.safetensors"))[3]
    victim.unlink()
    with pytest.raises(CheckpointError, match=f"missing shard file\\(s\\): {victim.name}"):
        load_model(path)


def test_other_model_type_and_unknown_values(tiny_checkpoint, tmp_path):
    path = _copy(tiny_checkpoint, tmp_path / "ck")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model_type": "gemma3"}))
    with pytest.raises(ConfigError, match="model_type is 'gemma3'"):
        load_model(path)
    bad = json.loads(json.dumps(config))
    bad["text_config"]["hidden_activation"] = "swish_beta"
    (path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="hidden_activation 'swish_beta' is not supported"):
        load_model(path)
    bad = json.loads(json.dumps(config))
    bad["text_config"]["rope_parameters"]["full_attention"]["rope_type"] = "yarn"
    (path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="rope_type 'yarn' is not supported"):
        load_model(path)
    bad = json.loads(json.dumps(config))
    bad["vision_config"]["mystery_knob"] = 3
    (path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="vision_config: unknown field\\(s\\) mystery_knob"):
        load_model(path)


@pytest.mark.parametrize("breakage", ["model_type", "truncate", "no-config"])
def test_cli_verify_one_line_error_no_traceback(tiny_checkpoint, tmp_path, breakage):
    path = _copy(tiny_checkpoint, tmp_path / "ck")
    if breakage == "model_type":
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    elif breakage == "truncate":
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[:100])
    else:
        (path / "config.json").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "streamer", "verify", "--model", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamer verify: error: "), proc.stderr


def test_cli_verify_json(tiny_checkpoint):
    proc = subprocess.run(
        [sys.executable, "-m", "streamer", "verify", "--model", str(tiny_checkpoint), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["reference"].startswith("transformers ")
    assert {c["name"] for c in report["cases"]} >= {"text", "text+image", "text+audio", "text+video"}
    assert all({"name", "max_abs_diff", "greedy_match"} <= set(c) for c in report["cases"])
    assert report["max_abs_diff"] <= 1e-4
