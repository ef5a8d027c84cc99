"""The JSONL format and the layouts it becomes: the engine's own, with loss on the answers only."""

from __future__ import annotations

import json

import pytest

from streamer.engine.conversation import IGNORE_INDEX, build_example
from streamer.errors import InputError
from streamer.finetune.data import Turn, build_conversation, load_example, parse_example, read_jsonl
from streamer.media import SamplingPolicy, open_media
from streamer.model.config import load_config
from streamer.model.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def model(bundled_dir):
    return load_config(bundled_dir), load_tokenizer(bundled_dir)


@pytest.fixture(scope="module")
def clip_items(small_clips):
    with open_media(small_clips[0], SamplingPolicy.fixed_rate(1.0)) as media:
        return list(media.items())


def _labelled(lay, labels, tok):
    """The labelled spans as text, with the special closing token shown."""
    spans, cur = [], []
    for i, label in enumerate(labels):
        if label != IGNORE_INDEX:
            assert label == lay.ids[i]
            cur.append(label)
        elif cur:
            spans.append(tok.decode(cur, skip_special_tokens=False))
            cur = []
    return spans + ([tok.decode(cur, skip_special_tokens=False)] if cur else [])


def test_one_turn_is_exactly_build_example(model, clip_items):
    config, tok = model
    a, la = build_example(config, tok, media=clip_items, prompt="What colour is the shape?", answer="red",
                          system_prompt="You watch.")  # fmt: skip
    b, lb = build_conversation(config, tok, media=clip_items, turns=[Turn("What colour is the shape?", "red")],
                               system_prompt="You watch.")  # fmt: skip
    assert (a.ids, a.kinds, a.block_ids, la) == (b.ids, b.kinds, b.block_ids, lb)
    assert [s for s, _ in a.media] == [s for s, _ in b.media]


def test_turns_at_media_times_and_their_labels(model, clip_items):
    config, tok = model
    turns = [Turn("First?", "one", at_s=2.0), Turn("Second?", "two", train=False), Turn("Third?", "three")]
    lay, labels = build_conversation(config, tok, media=clip_items, turns=turns)
    assert _labelled(lay, labels, tok) == ["one<end_of_turn>", "three<end_of_turn>"]
    text = tok.decode(lay.ids, skip_special_tokens=False)
    # frames stamped before 00:02 come before the first question, the rest after it
    first_q = text.index("First?")
    assert (
        text.index("00:01 ") < first_q < text.index("00:02 ") < text.index("Second?") < text.index("Third?")
    )
    assert len({b for b in lay.block_ids if b >= 0}) == sum(1 for i in clip_items if hasattr(i, "image"))


def test_text_only_example(model):
    config, tok = model
    lay, labels = build_conversation(config, tok, turns=[Turn("Say hi.", "hi")], system_prompt="Be brief.")
    assert _labelled(lay, labels, tok) == ["hi<end_of_turn>"]


@pytest.mark.parametrize(
    "line, message",
    [
        ([], "must be a JSON object"),
        ({"prompt": "q"}, '"answer" is missing'),
        ({"prompt": "q", "answer": "a", "colour": 1}, "unknown field(s) colour"),
        ({"turns": []}, '"turns" must be a non-empty list'),
        ({"turns": [{"prompt": "q", "answer": "a", "at_s": 5}, {"prompt": "q", "answer": "a", "at_s": 2}]},
         "must not decrease"),
        ({"turns": [{"prompt": "q", "answer": "a", "train": False}]}, "no turn is trained"),
        ({"prompt": "q", "answer": "a", "fps": 0}, '"fps" must be in'),
        ({"prompt": "q", "answer": "a", "frame_soft_tokens": 71}, "frame_soft_tokens"),
        ({"prompt": " ", "answer": "a"}, "is empty"),
        ({"media": "a.mp4", "generate": {"kind": "clip", "seed": 1}, "prompt": "q", "answer": "a"}, "not both"),
        ({"media": "a.mp4", "prompt": "q", "answer": "a", "start_s": -1}, '"start_s" must be in'),
        ({"prompt": "q", "answer": "a", "start_s": 5}, '"start_s" places "media"'),
    ],
)  # fmt: skip
def test_bad_lines_are_named(line, message, tmp_path):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_example(line, tmp_path, 3)


def test_jsonl_file_errors_name_the_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('# a comment\n{"prompt": "q", "answer": "a"}\n\n{"prompt": "q"\n')
    with pytest.raises(InputError, match=r"d.jsonl line 4: not valid JSON"):
        read_jsonl(path)
    path.write_text("\n")
    with pytest.raises(InputError, match="no examples"):
        read_jsonl(path)


def test_media_paths_are_relative_to_the_file_and_generated_media_is_cached(model, small_clips, tmp_path):
    config, tok = model
    path = tmp_path / "d.jsonl"
    rel = small_clips[0].name
    (tmp_path / rel).write_bytes(small_clips[0].read_bytes())
    lines = [{"media": rel, "prompt": "What shape is it?", "answer": "circle"},
             {"generate": {"kind": "clip", "seed": 3}, "prompt": "How many beeps?", "answer": "two"}]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    specs = read_jsonl(path)
    assert specs[0].media == tmp_path / rel
    example = load_example(specs[0], config, tok)
    assert example.trained_tokens == len(tok.encode("circle")) + 1
    made = []

    def resolve(spec):
        made.append(spec)
        return small_clips[1]

    load_example(specs[1], config, tok, resolve)
    assert made == [{"kind": "clip", "seed": 3}]


def test_start_s_puts_a_cut_segment_at_its_times_in_the_recording(model, small_clips, tmp_path):
    config, tok = model
    line = {"media": str(small_clips[0]), "prompt": "What shape is it?", "answer": "circle"}
    plain = load_example(parse_example(line, tmp_path), config, tok)
    moved = load_example(parse_example({**line, "start_s": 65}, tmp_path), config, tok)
    text = tok.decode(plain.layout.ids)
    moved_text = tok.decode(moved.layout.ids)
    assert "00:00" in text and "00:00" not in moved_text
    assert "01:05" in moved_text and "01:06" in moved_text  # every frame's time, shifted by 65 s
    assert moved.trained_tokens == plain.trained_tokens
