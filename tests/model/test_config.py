"""config.json: every field's type and range checked on load, one line naming the field."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

from streamer.errors import ConfigError
from streamer.model.config import parse_config


@pytest.fixture(scope="module")
def base(bundled_dir):
    return json.loads((bundled_dir / "config.json").read_text())


@pytest.mark.parametrize(
    "section, name, value, message",
    [
        ("text_config", "hidden_size", "sixty-four", 'text_config.hidden_size must be an integer, got "sixty-four"'),
        ("text_config", "rope_parameters", [], "text_config.rope_parameters must be an object or null, got []"),
        (None, "text_config", "abc", 'text_config must be an object or null, got "abc"'),
        ("text_config", "final_logit_softcapping", "x", "text_config.final_logit_softcapping must be a number or null"),
        ("text_config", "final_logit_softcapping", 0, "text_config.final_logit_softcapping must be > 0"),
        ("text_config", "sliding_window", -1, "text_config.sliding_window must be >= 1, got -1"),
        ("text_config", "num_hidden_layers", True, "text_config.num_hidden_layers must be an integer, got true"),
        ("text_config", "num_hidden_layers", 10**12, "text_config.num_hidden_layers must be at most 2147483647"),
        ("text_config", "rms_norm_eps", 0, "text_config.rms_norm_eps must be > 0"),
        ("text_config", "layer_types", "abc", "text_config.layer_types must be a list of strings or null"),
        ("text_config", "eos_token_id", [1, "a"], "text_config.eos_token_id must be an integer or a list of integers"),
        ("text_config", "per_layer_config", {"3": {"head_dim": "x"}}, "per_layer_config[3].head_dim must be an integer"),
        ("text_config", "rope_parameters", {"sliding_attention": {"rope_theta": "x"}, "full_attention": {"rope_theta": 1.0}},
         "text_config.rope_parameters.sliding_attention.rope_theta must be a number"),
        (None, "image_token_id", -5, "image_token_id must be >= 0, got -5"),
        (None, "tie_word_embeddings", "yes", "tie_word_embeddings must be true or false"),
        (None, "vision_config", 3, "vision_config must be an object or null, got 3"),
        ("vision_config", "patch_size", 0, "vision_config.patch_size must be >= 1"),
        ("audio_config", "audio_embed_dim", 1.5, "audio_config.audio_embed_dim must be an integer, got 1.5"),
    ],
)  # fmt: skip
def test_bad_field_is_one_error_naming_it(base, section, name, value, message):
    data = copy.deepcopy(base)
    (data if section is None else data.setdefault(section, {}))[name] = value
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "field, value", [("final_logit_softcapping", "x"), ("sliding_window", -1), ("hidden_size", "sixty-four")]
)
def test_cli_reports_a_bad_config_in_one_line_before_any_work(bundled_dir, tmp_path, field, value):
    model = shutil.copytree(bundled_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config["text_config"][field] = value
    (model / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "streamer", "verify", "--model", str(model)], capture_output=True, text=True,
        timeout=120, env={**os.environ, "STREAMER_HOME": str(bundled_dir.parent.parent)},
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and f"text_config.{field} must be" in proc.stderr, proc.stderr


def test_nan_in_config_json_is_refused(bundled_dir, tmp_path):
    from streamer.model.config import load_config

    (tmp_path / "config.json").write_text(
        (bundled_dir / "config.json").read_text().replace("1e-06", "NaN", 1)
    )
    with pytest.raises(ConfigError, match="not valid JSON: NaN"):
        load_config(tmp_path)
