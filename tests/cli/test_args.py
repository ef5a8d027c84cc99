"""The validated argparse types every command uses (streamer.cli.args), and one-line usage errors."""

from __future__ import annotations

import argparse

import pytest

from streamer.cli import main
from streamer.cli.args import SEED, THREADS, device, number, number_list, text


@pytest.mark.parametrize(
    "raw", ["-1", "0", "1025", "100000", "1.5", "abc", "", "nan", " ", "1e3", "9" * 5000]
)
def test_threads_refuses_what_is_not_an_integer_in_range(raw):
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be an integer in \[1, 1024\]"):
        THREADS(raw)


def test_numbers_in_range_pass_and_keep_their_kind():
    assert THREADS("4") == 4 and isinstance(THREADS("4"), int)
    assert SEED(str(2**63 - 1)) == 2**63 - 1
    temperature = number(float, 1e-2, 100.0, also=(0.0,))
    assert temperature("0") == 0.0 and temperature("0.7") == 0.7


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e309", "1e-45", "3.5e38", "-0.5", "0x10"])
def test_floats_refuse_non_finite_and_out_of_range(raw):
    with pytest.raises(argparse.ArgumentTypeError, match="must be 0 or a number in"):
        number(float, 1e-2, 100.0, also=(0.0,))(raw)


def test_seed_past_the_engines_bound_is_refused():
    with pytest.raises(argparse.ArgumentTypeError, match=r"\[0, 2\*\*63 - 1\]"):
        SEED(str(2**63))


def test_open_lower_bound():
    fps = number(float, 0.0, 30.0, lo_open=True)
    assert fps("30") == 30.0
    with pytest.raises(argparse.ArgumentTypeError, match=r"\(0, 30\]"):
        fps("0")


def test_number_list():
    minutes = number_list(number(float, 0.0, 60.0, lo_open=True))
    assert minutes("1, 10,60") == [1.0, 10.0, 60.0]
    for raw in ("abc", "1,,2", "", "1,-1", "1,nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            minutes(raw)


def test_text_refuses_undecodable_bytes_and_lone_surrogates():
    assert text("Qu'a-t-on décidé ?") == "Qu'a-t-on décidé ?"
    with pytest.raises(argparse.ArgumentTypeError, match="byte 0xe9 at character 4"):
        text(b"caf\xe9".decode("utf-8", "surrogateescape"))
    with pytest.raises(argparse.ArgumentTypeError, match="lone surrogate U\\+D800"):
        text("a\ud800")


@pytest.mark.parametrize("raw", ["cpu", "cuda", "cuda:0", "cuda:7", "mps"])
def test_device_syntax_ok(raw):
    assert device(raw) == raw


@pytest.mark.parametrize("raw", ["bogus", "cuda:", "cuda:-1", "CPU", "cpu:0:1", "", "cuda:1234"])
def test_device_syntax_refused(raw):
    with pytest.raises(argparse.ArgumentTypeError, match="must be cpu, cuda, cuda:N or mps"):
        device(raw)


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["ask", "x.mp4", "q", "--temperature", "1e-45"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("streamer ask: error: argument --temperature: must be 0 or a number in [0.01, 100]")
    assert main(["bench", "stream", "--ttft-at", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --ttft-at: each value must be" in err, err
    assert main(["summarize"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the following arguments are required: PATH" in err, err


def test_help_and_version_return_0(capsys):
    assert main(["--version"]) == 0
    assert main(["ask", "--help"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--scene", "0.1", "--min-interval", "5", "--max-interval", "1"], "--min-interval 5 s"),
        (["--max-interval", "0.2"], "--min-interval 0.5 s"),  # against the default of the other
        (["--min-interval", "20"], "--max-interval 10 s"),
    ],
)
def test_probe_min_interval_over_max_interval_is_a_usage_error_before_any_work(
    capsys, tmp_path, flags, shown
):
    missing = str(tmp_path / "missing.mp4")  # opening it would be an exit-1 error: no work was done
    assert main(["probe", missing, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("streamer probe: error: --min-interval"), err
    assert shown in err and "missing.mp4" not in err, err
