"""`streamer finetune` on the tiny random bundled checkpoint: LoRA and full, resume, outputs transformers loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from streamer.verify import run_verify

from streamer.finetune.trainer import STOP_ENV

QUESTIONS = [
    ("What colour is the shape?", "red"),
    ("How many beeps?", "two"),
    ("What shape is it?", "circle"),
]


@pytest.fixture(scope="module")
def data(small_clips, tmp_path_factory):
    """Four clips, three questions each (the same answers: the loss can only go down)."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    lines = [
        {"media": str(c), "turns": [{"prompt": q, "answer": a} for q, a in QUESTIONS]} for c in small_clips
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _finetune(bundled_dir, data, out, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "streamer", "finetune", "--model", str(bundled_dir), "--data", str(data),
         "--out", str(out), "--threads", "1", "--quiet", *map(str, args)],
        capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _history(out):
    return json.loads((out / "finetune.json").read_text())


@pytest.mark.parametrize(
    "mode", [["--lora", "4", "--lr", "1e-2"], ["--full", "--lr", "3e-3"]], ids=["lora", "full"]
)
def test_loss_decreases_and_the_output_is_a_checkpoint(bundled_dir, data, tmp_path, mode):
    out = tmp_path / "out"
    proc = _finetune(bundled_dir, data, out, *mode, "--steps", "12", "--batch-tokens", "1", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    result = _history(out)
    first, last = result["history"][0]["loss"], result["history"][-1]["loss"]
    # (the random model's tiny tied embeddings (std 0.02) cap its logits: LoRA cannot go far)
    assert last < (0.95 if mode[0] == "--lora" else 0.8) * first, result["history"]
    assert result["steps"] == 12 and result["examples"] == 12
    total = result["total_params"]
    if mode[0] == "--lora":
        assert 0 < result["trainable_params"] < 0.2 * total
        adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
        assert adapter["r"] == 4 and "patch_dense" in adapter["target_modules"]
    else:
        assert result["trainable_params"] == total
    assert not (out / ".finetune-state").exists()
    for name in ("config.json", "tokenizer.json", "chat_template.jinja", "generation_config.json"):
        assert (out / name).read_bytes() == (bundled_dir / name).read_bytes()
    before, after = (
        load_file(str(bundled_dir / "model.safetensors")),
        load_file(str(out / "model.safetensors")),
    )
    assert set(before) == set(after)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert any("embed_audio" in n for n in changed) and any("patch_dense" in n for n in changed)
    assert any("q_proj" in n for n in changed) and any("down_proj" in n for n in changed)
    # transformers loads it and agrees with streamer (the verify battery)
    report = run_verify(out, dtype="float32")
    assert report.passed, [c for c in report.cases if not c.passed]


def test_lora_adapter_in_peft_format_equals_the_merged_model(bundled_dir, data, tmp_path):
    from peft import PeftModel

    from streamer.model.inputs import Text, embed_layout, layout, meta_for
    from streamer.model.weights import load_model

    out = tmp_path / "out"
    assert _finetune(bundled_dir, data, out, "--lora", "4", "--steps", "3", "--lr", "1e-2").returncode == 0
    merged = load_model(out).model
    base = load_model(bundled_dir).model
    adapted = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    lay = layout(merged.config, [Text(list(range(20, 60)))])
    with torch.no_grad():
        a = merged.logits(merged(embed_layout(merged, lay)[None], meta_for(lay)))
        b = merged.logits(
            adapted.base_model.model(embed_layout(adapted.base_model.model, lay)[None], meta_for(lay))
        )
    assert torch.allclose(a, b, atol=1e-4)


def test_resume_ends_where_the_uninterrupted_run_ends(bundled_dir, data, tmp_path):
    args = ("--full", "--steps", "6", "--save-every", "2", "--batch-tokens", "1", "--lr", "3e-3")
    straight = tmp_path / "straight"
    assert _finetune(bundled_dir, data, straight, *args).returncode == 0
    broken = tmp_path / "broken"
    proc = _finetune(bundled_dir, data, broken, *args, env={STOP_ENV: "4"})
    assert proc.returncode == 130 and (broken / ".finetune-state").is_dir()
    assert not (broken / "model.safetensors").exists()
    proc = _finetune(bundled_dir, data, broken, *args)
    assert proc.returncode == 1 and "--resume" in proc.stderr  # a non-empty --out needs --resume
    proc = _finetune(bundled_dir, data, broken, *args, "--resume")
    assert proc.returncode == 0, proc.stderr
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(broken / "model.safetensors"))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert _history(broken)["steps"] == 6 and _history(broken)["examples"] == 6
    proc = _finetune(bundled_dir, data, tmp_path / "other", *args, "--resume")
    assert proc.returncode == 1 and "no interrupted run" in proc.stderr


def test_resume_refuses_other_settings(bundled_dir, data, tmp_path):
    out = tmp_path / "out"
    args = ("--full", "--steps", "4", "--save-every", "2")
    assert _finetune(bundled_dir, data, out, *args, env={STOP_ENV: "2"}).returncode == 130
    proc = _finetune(
        bundled_dir, data, out, "--full", "--steps", "4", "--save-every", "2", "--lr", "5e-3", "--resume"
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "lr: 0.0001 → 0.005" in proc.stderr


def test_user_errors_are_one_line(bundled_dir, data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "answer": "a", "colour": "red"}\n')
    for args in (
        ("--data", str(bad)),
        ("--data", str(tmp_path / "missing.jsonl")),
        ("--data", str(data), "--lr", "-1"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "streamer", "finetune", "--model", str(bundled_dir), "--out",
             str(tmp_path / "o"), *args], capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode in (1, 2) and proc.stderr.startswith("streamer finetune: error: "), proc.stderr
        assert proc.stderr.count("\n") == 1
