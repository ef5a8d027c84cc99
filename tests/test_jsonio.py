"""streamer.jsonio: strict JSON in and out (no NaN / Infinity)."""

from __future__ import annotations

import json

import pytest

from streamer import jsonio


def test_non_finite_floats_are_written_as_null():
    text = jsonio.dumps({"ttft_s": float("nan"), "x": [float("inf"), -float("inf"), 1.5], "t": (1, 2)})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name)) == {
        "ttft_s": None, "x": [None, None, 1.5], "t": [1, 2]}  # fmt: skip


@pytest.mark.parametrize("text", ['{"a": NaN}', "[Infinity]", "-Infinity"])
def test_nan_and_infinity_are_refused_on_read(text):
    with pytest.raises(ValueError, match="is not valid JSON"):
        jsonio.loads(text)


def test_huge_integers_are_refused_with_a_message_of_our_own():
    assert jsonio.loads("[-" + "9" * 4300 + "]")[0] == -int("9" * 4300)
    for text in ('{"seq": ' + "9" * 5000 + "}", "[-" + "1" * 4301 + "]"):
        with pytest.raises(ValueError, match=r"an integer of \d+ digits is too long") as info:
            jsonio.loads(text)
        assert "set_int_max_str_digits" not in str(info.value)
