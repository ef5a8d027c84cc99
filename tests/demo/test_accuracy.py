"""The bundled demo model answers on recordings it never saw, through the whole pipeline.

Each question runs ``streamer ask FILE QUESTION --json`` (decoders → engine → greedy answer) on
held-out clips drawn from the task's distribution (seeds far from every training seed), free-form
and with ``--choices``; the timeline runs ``streamer summarize`` exactly as ``make run`` does.
Greedy decoding on fixed seeds makes every figure deterministic on one build of torch.

The issue's target is 90 % per question type. :data:`FLOORS` are what the shipped model measured
on these clips (README, "The demo model"), a little lower where a type is not solved, so that a
regression in the pipeline (decoders, layout, sampling, engine) fails here; where a floor is
below the target, the target is not met and the README says so.
"""

from __future__ import annotations

import pytest

from streamer.demo.evaluate import evaluate_clips, evaluate_moments, evaluate_summaries
from streamer.demo.tasks import CLIP_QUESTIONS
from streamer.demo.train import DEMO_RECORDING_SEED, HELD_OUT_SEED

pytestmark = [pytest.mark.timeout(600)]

CLIPS = [HELD_OUT_SEED + i for i in range(20)]
TARGET = 0.9
FLOORS: dict[str, float] = {"colour": 0.9, "tone": 0.9, "shape": 0.85, "beeps": 0.6, "motion": 0.2}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("demo-media")


@pytest.mark.parametrize("choices", [False, True], ids=["free-form", "choices"])
def test_clip_questions(demo_model, cache, choices):
    scores = evaluate_clips(demo_model, CLIPS, cache, choices=choices)
    accuracy = scores.accuracy()
    assert set(accuracy) == set(CLIP_QUESTIONS)
    for kind, floor in FLOORS.items():
        assert accuracy[kind] >= floor, (kind, accuracy, scores.wrong)


def test_answers_are_words_of_the_task(demo_model, cache):
    """Free-form answers stay one word of the task's vocabulary even when wrong."""
    from streamer.demo.tasks import CLIP_CHOICES

    scores = evaluate_clips(demo_model, CLIPS[:5], cache)
    for wrong in scores.wrong:
        assert wrong["got"] in CLIP_CHOICES[wrong["kind"]], wrong


def test_summary_of_the_make_run_recording(demo_model, cache):
    """`make run`'s recording: the summary has the trained form (an overview, then one line per
    appearance as `MM:SS colour shape, N low|high beeps`, times inside the recording). Which events it
    lists right is measured, not asserted: the shipped model gets few right (README)."""
    import re

    from streamer.demo.scene import COLOURS, SHAPES

    spec = {"kind": "timeline", "seed": DEMO_RECORDING_SEED, "min_s": 60.0, "max_s": 60.0}
    result = evaluate_summaries(demo_model, [spec], cache)
    text = result["runs"][0]["summary"]
    assert text.startswith("Overview: ") and "\nKey points:\n- " in text, text
    lines = text.split("Key points:\n", 1)[1].splitlines()
    pattern = re.compile(
        rf"- (\d\d):(\d\d) ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)}), [1-4] (low|high) beeps?$"
    )
    for line in lines:
        m = pattern.match(line)
        assert m and int(m[1]) * 60 + int(m[2]) < 60, (line, text)


def test_colour_at_a_time(demo_model, cache):
    specs = [{"kind": "timeline", "seed": HELD_OUT_SEED + i, "min_s": 30.0, "max_s": 45.0} for i in range(2)]
    scores = evaluate_moments(demo_model, specs, cache, per_recording=5)
    assert scores.accuracy()["colour at"] >= 0.5, scores.wrong  # measured: 0.6 (README)
