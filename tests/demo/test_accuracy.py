"""The bundled demo model answers right on recordings it never saw, through the whole pipeline.

Each question runs `streamer ask FILE QUESTION --json` (decoders → engine → greedy answer) on
held-out clips drawn from the task's distribution (seeds far from every training seed), free-form
and with --choices; the timeline runs `streamer summarize` exactly as `make run` does. Greedy
decoding on fixed seeds makes every figure deterministic.
"""

from __future__ import annotations

import pytest

from streamer.demo.checkpoint import demo_model_dir
from streamer.demo.evaluate import evaluate_clips, evaluate_moments, evaluate_summaries
from streamer.demo.tasks import CLIP_QUESTIONS
from streamer.demo.train import DEMO_RECORDING_SEED, HELD_OUT_SEED

CLIPS = [HELD_OUT_SEED + i for i in range(10)]
TARGET = 0.9


@pytest.fixture(scope="module")
def model():
    path = demo_model_dir()
    assert path is not None, "the demo model is not installed (python -m streamer.demo.train --install)"
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("demo-media")


@pytest.mark.parametrize("choices", [False, True], ids=["free-form", "choices"])
def test_clip_questions(model, cache, choices):
    scores = evaluate_clips(model, CLIPS, cache, choices=choices)
    accuracy = scores.accuracy()
    assert set(accuracy) == set(CLIP_QUESTIONS)
    assert all(a >= TARGET for a in accuracy.values()), (accuracy, scores.wrong)


def test_summary_of_the_make_run_recording(model, cache):
    spec = {"kind": "timeline", "seed": DEMO_RECORDING_SEED, "min_s": 60.0, "max_s": 60.0}
    result = evaluate_summaries(model, [spec], cache)
    assert result["listed"] >= TARGET, result["runs"][0]["summary"]


def test_colour_at_a_time(model, cache):
    specs = [{"kind": "timeline", "seed": HELD_OUT_SEED + i, "min_s": 30.0, "max_s": 45.0} for i in range(2)]
    scores = evaluate_moments(model, specs, cache, per_recording=5)
    assert scores.accuracy()["colour at"] >= TARGET, scores.wrong
