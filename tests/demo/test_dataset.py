"""Training datasets of the demo task: JSONL lines `streamer finetune` reads, with their media, reproducibly."""

from __future__ import annotations

from collections import Counter

from streamer.demo.dataset import DatasetPlan, write_dataset
from streamer.demo.tasks import CLIP_QUESTIONS
from streamer.finetune.data import read_jsonl

_PLAN = DatasetPlan(clips=2, listen=2, glance=1, notes=1, moments=1, seed=100_000, timeline_seed=600_000,
                    timeline_s=(9.0, 10.0), chunk_s=(5.0,), questions_per_moments=2, video_fps=5)  # fmt: skip


def _kinds(specs) -> Counter:
    """What each line asks: the view of a clip, or the timeline job."""
    kinds: Counter = Counter()
    for spec in specs:
        prompts = [t.prompt for t in spec.turns]
        if spec.system is not None:
            kinds["notes"] += 1
        elif prompts[0].startswith("What colour was"):
            kinds["moments"] += 1
        elif not spec.video:
            kinds["listen"] += 1
        elif not spec.audio:
            kinds["glance"] += 1
        else:
            kinds["clip"] += 1
    return kinds


def test_plan_writes_media_and_lines_finetune_reads(tmp_path):
    path = write_dataset(tmp_path, _PLAN, name="clips.jsonl")
    specs = read_jsonl(path)
    assert _kinds(specs) == {"clip": 2, "listen": 2, "glance": 1, "notes": 1, "moments": 1}
    for spec in specs:
        assert spec.media is not None and spec.media.is_file(), spec
    for spec in specs:
        if spec.system is None and not spec.turns[0].prompt.startswith("What colour was"):
            assert {t.prompt for t in spec.turns} <= set(CLIP_QUESTIONS.values())
    # a clip line asks all five questions; a glance asks colour and shape at one second
    clip = next(s for s in specs if s.video and s.audio and s.system is None and len(s.turns) >= 5)
    assert {t.prompt for t in clip.turns} == set(CLIP_QUESTIONS.values())
    glance = next(s for s in specs if not s.audio)
    assert {t.at_s for t in glance.turns} == {1.0}
    # a timeline's notes: one per chunk, then the summary (`Overview: ...`)
    notes = next(s for s in specs if s.system is not None)
    assert len(notes.turns) >= 3 and notes.turns[-1].answer.startswith("Overview: ")
    assert all(t.answer for t in notes.turns[:-1]) and all(t.at_s is not None for t in notes.turns[:-2])
    # the same plan gives the same file
    again = write_dataset(tmp_path, _PLAN, name="again.jsonl")
    assert again.read_bytes() == path.read_bytes()
