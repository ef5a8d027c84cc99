"""``streamer bench model`` runs end to end on a tiny shape and prints its figures (nothing is timed here)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.benchmarks import model as bench_model
from streamer.errors import StreamerError

TINY = [
    "--hidden", "32", "--layers", "2", "--heads", "2", "--kv-heads", "1", "--head-dim", "8",
    "--global-head-dim", "16", "--intermediate", "64", "--sliding-window", "4", "--vocab", "128",
    "--prompt", "10", "--new-tokens", "4", "--repeats", "1", "--threads", "1",
]  # fmt: skip


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """``--threads`` sets torch's process-wide thread count: give the other tests theirs back."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    return tmp_path_factory.mktemp("bench-model")


def test_table_shows_both_phases_side_by_side(cache_dir, capsys):
    assert bench_model.run(_args(*TINY, "--cache-dir", str(cache_dir))) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if re.match(r"(prefill|decode) +\d", line)
    }
    for phase in ("prefill", "decode"):
        streamer_rate, reference_rate, ratio = rows[phase][:3]
        assert float(streamer_rate) > 0 and float(reference_rate) > 0 and ratio.endswith("x")
    assert re.search(r"^decode bound +\d", out, re.M)
    assert "transformers" in out and "greedy tokens: match" in out


def test_json_has_every_figure_and_reuses_the_checkpoint(cache_dir, capsys):
    assert bench_model.run(_args(*TINY, "--cache-dir", str(cache_dir), "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(list(cache_dir.glob("gemma4u-*"))) == 1  # written by the first test, reused here
    assert report["device"] == "cpu" and report["dtype"] == "float32" and report["threads"] == 1
    assert report["config"]["hidden"] == 32 and report["prompt_tokens"] == 10 and report["new_tokens"] == 4
    for phase, target in (("prefill", 1.0), ("decode", 1.5)):
        figures = report[phase]
        assert figures["streamer_tok_s"] > 0 and figures["reference_tok_s"] > 0
        assert figures["ratio"] == pytest.approx(figures["streamer_tok_s"] / figures["reference_tok_s"])
        assert figures["target"] == target and isinstance(figures["met"], bool)
    assert report["tokens_match"] is True and report["tokens_agreeing"] == 4
    assert report["prefill_max_abs_logit_diff"] < 1e-4
    assert report["decode_weights_bound_tok_s"] > 0 and report["decode_bound_over_reference"] > 0
    assert len(report["load_average_1m"]) == 2


def test_missing_transformers_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(StreamerError, match=r"pip install 'transformers>=5\.24'"):
        bench_model.run(_args(*TINY, "--cache-dir", str(tmp_path)))
    assert not any(tmp_path.iterdir())


def test_module_top_level_imports_nothing_heavy():
    code = (
        "import sys, streamer.benchmarks.model; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    ).stdout
    assert out.strip() == "[]"
