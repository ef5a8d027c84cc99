"""Resume state that is damaged or names odd files, and the decode thread's supervised shutdown."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from streamer.errors import InputError, OutputError
from streamer.summarize.prefetch import Prefetch
from streamer.summarize.result import Note
from streamer.summarize.state import ResumeState, StateDir, input_fingerprint


def _state(tmp_path) -> ResumeState:
    media = tmp_path / "a.mp4"
    media.write_bytes(b"x")
    state = ResumeState(input_fingerprint(media), {"fps": 1.0}, "f" * 64, position_s=60.0, chunks_done=1,
                        notes=[Note(0, 0.0, 60.0, "notes", 5)], text_tokens=40,
                        snapshot="session-00001.safetensors", timings={"total_s": 1.0})  # fmt: skip
    return state


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("position_s", "abc", "position_s must be a number of seconds >= 0"),
        ("position_s", -1, "position_s must be a number of seconds >= 0"),
        ("chunks_done", 1.5, "chunks_done must be an integer >= 0"),
        ("chunks_done", True, "chunks_done must be an integer >= 0"),
        ("notes", {}, "notes must be a list"),
        (
            "notes",
            [{"index": "0", "start_s": 0, "end_s": 1, "text": "t", "tokens": 1}],
            "notes[0].index must be",
        ),
        ("notes", [5], "notes[0] must be an object"),
        ("snapshot", "../../etc/passwd", "snapshot must be a file name session-NNNNN.safetensors"),
        ("snapshot", "", "it names no session snapshot"),
        ("timings", {"total_s": "x"}, "timings must be an object of seconds"),
        ("model", 3, "model must be a string"),
        ("input", [], "input must be an object"),
        ("extra", 1, "unknown field(s) ['extra']"),
    ],
)
def test_state_fields_of_the_wrong_type_are_one_input_error(tmp_path, field, value, message):
    data = json.loads(_state(tmp_path).to_json())
    data[field] = value
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        StateDir(folder).load()
    assert message in str(info.value) and "rerun without --resume" in str(info.value)


def test_nan_in_state_json_is_refused(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "state.json").write_text(
        _state(tmp_path).to_json().replace('"position_s": 60.0', '"position_s": NaN')
    )
    with pytest.raises(InputError, match="NaN is not valid JSON"):
        StateDir(folder).load()


def test_non_utf8_file_name_round_trips_through_the_state_file(tmp_path):
    name = os.fsdecode(b"caf\xe9.mp4")
    (tmp_path / name).write_bytes(b"x")
    fp = input_fingerprint(tmp_path / name)
    assert fp["path"].endswith("caf\ufffd.mp4")  # shown with a replacement character
    assert os.fsdecode(bytes.fromhex(fp["path_bytes"])) == str((tmp_path / name).resolve())  # found again
    state = _state(tmp_path)
    state.input = fp
    text = state.to_json()
    text.encode("utf-8")  # writable as UTF-8
    assert ResumeState.from_json(text).input == input_fingerprint(tmp_path / name)


def test_a_failed_first_save_leaves_no_state_folder(tmp_path, monkeypatch):
    import streamer.engine.snapshot as snapshot

    def broken(engine, session, path):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot, "save_session", broken)
    folder = StateDir(tmp_path / "x.summarize-state")
    with pytest.raises(OutputError, match="cannot save the resume state .*No space left on device"):
        folder.save(None, None, _state(tmp_path))  # type: ignore[arg-type]
    assert not folder.path.exists()


def test_ctrl_c_during_close_still_waits_for_the_reader_then_closes_the_source():
    events: list[str] = []
    release = threading.Event()

    def slow():
        yield 1
        release.wait(5)  # decoding one slow item
        events.append("reader done")
        yield 2

    prefetch = Prefetch(slow(), depth=1, on_stopped=lambda: events.append("source closed"))
    assert next(iter(prefetch)) == 1
    calls = {"n": 0}
    real_join = prefetch._thread.join

    def join(timeout=None):  # the first wait is interrupted by Ctrl-C
        calls["n"] += 1
        if calls["n"] == 1:
            threading.Timer(0.2, release.set).start()
            raise KeyboardInterrupt
        real_join(timeout)

    prefetch._thread.join = join  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        prefetch.close()
    assert events == ["reader done", "source closed"]  # closed only after the reader stopped


def test_a_reader_that_outlives_close_closes_the_source_itself():
    events: list[str] = []
    release = threading.Event()

    def stuck():
        yield 1
        release.wait(5)
        yield 2

    prefetch = Prefetch(stuck(), depth=1, on_stopped=lambda: events.append("source closed"))
    assert next(iter(prefetch)) == 1
    prefetch.close(timeout_s=0.1)
    assert events == []  # not closed under the reader
    release.set()
    for _ in range(100):
        if events:
            break
        time.sleep(0.02)
    assert events == ["source closed"]
