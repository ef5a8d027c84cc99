"""Training datasets of the demo task: JSONL lines `streamer finetune` reads, with their media, reproducibly."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from streamer.demo.dataset import DatasetPlan, recording_of, write_dataset
from streamer.demo.scene import render_audio, render_frame
from streamer.demo.tasks import CLIP_QUESTIONS, clip_answers
from streamer.errors import InputError
from streamer.finetune.data import read_jsonl
from streamer.media import open_media

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


def test_glances_of_their_own_seeds_are_one_second_files_and_timelines_keep_their_rate(tmp_path):
    plan = DatasetPlan(glance=2, glance_seed=300_000, notes=1, seed=100_000, timeline_seed=600_000,
                       timeline_s=(9.0, 10.0), chunk_s=(5.0,), video_fps=5, timeline_fps=1)  # fmt: skip
    specs = read_jsonl(write_dataset(tmp_path, plan, name="views.jsonl"))
    glances = [s for s in specs if s.system is None]
    assert len(glances) == 2
    for spec in glances:
        assert spec.media is not None and "first1" in spec.media.name
        with open_media(spec.media) as media:
            assert media.info.duration_s is not None and media.info.duration_s < 1.5
        seed = int(spec.media.stem.rsplit("-", 1)[1])
        assert 300_000 <= seed < 300_002
        # the answers are those of the whole clip the second was cut from
        answers = clip_answers(recording_of({"kind": "clip", "seed": seed}))
        assert {t.answer for t in spec.turns} == {answers["colour"], answers["shape"]}
    (notes,) = [s for s in specs if s.system is not None]
    assert notes.media is not None and "-1fps-" in notes.media.name


def test_a_clip_cut_short_keeps_its_picture_and_the_beeps_it_still_holds():
    whole = recording_of({"kind": "clip", "seed": 7})
    cut = recording_of({"kind": "clip", "seed": 7, "first_s": 1})
    assert cut.duration_s == 1.0
    ((a, b),) = zip(whole.appearances, cut.appearances, strict=True)
    assert (b.colour, b.shape, b.motion, b.t0_s, b.t1_s) == (a.colour, a.shape, a.motion, a.t0_s, a.t1_s)
    assert b.beeps.starts_s == tuple(t for t in a.beeps.starts_s if t < 1.0) and b.beeps.count < a.beeps.count
    assert np.array_equal(render_frame(cut, 0.5), render_frame(whole, 0.5))
    assert render_audio(cut).size == cut.sample_rate
    with pytest.raises(InputError, match="first_s"):
        recording_of({"kind": "clip", "seed": 7, "first_s": 99})


def test_a_timeline_window_is_that_stretch_of_the_timeline_starting_at_zero():
    spec = {"kind": "timeline", "seed": 3, "min_s": 40.0, "max_s": 60.0}
    whole = recording_of(spec)
    a = whole.appearances[1]
    start, end = float(int(a.t0_s) - 1), float(int(a.t1_s) + 1)
    window = recording_of({**spec, "from_s": start, "to_s": end})
    assert window.duration_s == end - start and window.container not in ("mkv", "avi")
    for t in np.arange(start, end, 0.5):
        assert np.array_equal(render_frame(window, t - start), render_frame(whole, t))
    kept = [b for x in whole.appearances for b in x.beeps.starts_s if start <= b < end]
    assert [b + start for x in window.appearances for b in x.beeps.starts_s] == pytest.approx(kept)
    with pytest.raises(InputError, match="from_s"):
        recording_of({**spec, "from_s": 5, "to_s": 4})


def test_onset_windows_ask_the_time_each_shape_first_shows_at_its_own_times(tmp_path):
    plan = DatasetPlan(onsets=2, onset_notes=1, seed=100_000, timeline_seed=600_000, long_timeline_s=(30.0, 40.0),
                       timeline_fps=1)  # fmt: skip
    specs = read_jsonl(write_dataset(tmp_path, plan, name="onsets.jsonl"))
    timelines = [recording_of({"kind": "timeline", "seed": 3_600_000 + i, "min_s": 30.0, "max_s": 40.0})
                 for i in range(2)]  # fmt: skip
    onsets = [s for s in specs if s.system is None]
    notes = [s for s in specs if s.system is not None]
    assert len(onsets) == sum(len(t.appearances) for t in timelines) and 0 < len(notes) <= len(
        timelines[0].appearances
    )
    for spec in specs:
        assert spec.media is not None and spec.start_s == int(spec.start_s)
        with open_media(spec.media) as media:
            times = [i.t_s + spec.start_s for i in media.items() if hasattr(i, "image")]
        assert times == [spec.start_s + k for k in range(len(times))] and len(times) >= 2
        (turn,) = spec.turns
        shown = [t for t in times if any(x.visible(t) for x in _timeline_of(timelines, spec).appearances)]
        first = shown[0]
        assert times[0] < first  # a blank second before the shape, inside the window
        assert turn.answer.startswith(f"{int(first) // 60:02d}:{int(first) % 60:02d}")
        if spec.system is None:
            assert turn.prompt == "When did the shape appear?" and not spec.audio
        else:
            assert turn.answer.count("\n") == 0 and "beep" in turn.answer and spec.audio


def _timeline_of(timelines, spec):
    seed = int(spec.media.stem.rsplit("-", 1)[1])
    return next(t for t in timelines if t.seed == seed)


def test_a_digest_is_the_notes_as_earlier_answers_then_the_summary_listing_them_all():
    from streamer.demo.dataset import chunk_bounds, digest_line

    rec = recording_of({"kind": "timeline", "seed": 4_600_800})
    line = digest_line(rec, 15.0)
    assert "media" not in line and "generate" not in line
    *notes, summary = line["turns"]
    assert len(notes) == len(chunk_bounds(rec.duration_s, 15.0))
    assert all(t["train"] is False and "at_s" not in t for t in notes) and "train" not in summary
    listed = [x for t in notes for x in t["answer"].splitlines() if x != "Nothing new."]
    assert len(listed) == len(rec.appearances) and summary["answer"].endswith(
        "\n".join(f"- {x}" for x in listed)
    )
