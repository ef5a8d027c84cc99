"""``streamer ask FILE "QUESTION"``: stream a recording into a session as if live, then ask."""

from __future__ import annotations

import argparse
import sys

from streamer import jsonio
from streamer.cli.args import CONTEXT_TOKENS, FPS, SEED, TOKENS, number, question, text
from streamer.cli.common import add_model_arguments, load_engine, media_policy
from streamer.engine.protocol import MAX_TEMPERATURE, MIN_TEMPERATURE, MIN_TOP_P
from streamer.errors import InputError, MediaError
from streamer.text import display

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="media file (video and/or audio)")
    parser.add_argument("question", type=question, help="the question to ask after the recording")
    add_model_arguments(parser)
    parser.add_argument("--fps", type=FPS, default=1.0, help="video frames sampled per second (default 1)")
    parser.add_argument(
        "--system", type=text, default=None, metavar="PROMPT", help="system prompt of the session"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--max-new-tokens", type=TOKENS, default=256, help="answer length cap in tokens (default 256)"
    )
    parser.add_argument(
        "--temperature", type=number(float, MIN_TEMPERATURE, MAX_TEMPERATURE, also=(0.0,)), default=0.0,
        help=f"0 = greedy (default), else {MIN_TEMPERATURE:g}-{MAX_TEMPERATURE:g}",
    )  # fmt: skip
    parser.add_argument(
        "--top-k",
        type=number(int, 0, 1 << 24),
        default=0,
        help="sample from the k most likely tokens (0 = off)",
    )
    parser.add_argument(
        "--top-p", type=number(float, MIN_TOP_P, 1.0), default=1.0, help="nucleus sampling mass (1 = off)"
    )
    parser.add_argument("--seed", type=SEED, default=None, help="seed for sampling (0 to 2**63 - 1)")
    parser.add_argument(
        "--choices",
        type=text,
        default=None,
        help="comma-separated answers; the answer is exactly one of them",
    )
    parser.add_argument(
        "--max-context-tokens", type=CONTEXT_TOKENS, default=None, metavar="N",
        help="the session's KV budget in tokens (default: from the model's shapes and a 1 GiB target)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from streamer.engine.ingest import ingest
    from streamer.engine.sampling import SamplingParams
    from streamer.engine.session import FinishReason, SessionConfig
    from streamer.media import open_media

    # `--choices ""` is no answer at all, not "no constraint": refused like `--choices a,,b`
    choices = tuple(c.strip() for c in args.choices.split(",")) if args.choices is not None else ()
    if args.choices is not None and not all(choices):
        raise InputError("--choices needs non-empty, comma-separated answers")
    params = SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, seed=args.seed, choices=choices,
    )  # fmt: skip
    source = open_media(args.file, media_policy(fps=args.fps))  # fail fast, before loading the model
    with source:
        engine = load_engine(args)
        session = engine.open_session(
            SessionConfig(system_prompt=args.system, max_context_tokens=args.max_context_tokens)
        )
        # A file is not live: wait for each item's prefill instead of letting the queue drop frames.
        fed = ingest(session, source.items(), pump=session.wait_idle)
        warnings = list(source.warnings)
    if fed.frames == 0 and fed.audio_s == 0:
        session.close()
        engine.stop()
        why = "; ".join(warnings) or "no frame or audio"
        raise MediaError(f"{display(args.file)}: nothing could be decoded ({why})")
    stream = session.ask(args.question, params)
    for event in stream:
        if not args.json:
            sys.stdout.write(event.text)
            sys.stdout.flush()
    answer = stream.result(timeout=0)
    engine.stop()
    for w in warnings:
        print(f"streamer ask: warning: {display(w)}", file=sys.stderr)
    if answer.finish_reason is FinishReason.ERROR:
        raise InputError(answer.error or "the answer failed")
    if args.json:
        print(jsonio.dumps({  # strict JSON: no first token gives null, never NaN
            "answer": answer.text, "token_ids": answer.token_ids,
            "ttft_s": None if answer.ttft_s is None else round(answer.ttft_s, 6),
            "context_tokens": answer.context_tokens, "evicted_tokens": answer.evicted_tokens,
            "finish_reason": answer.finish_reason.value, "warnings": warnings,
        }))  # fmt: skip
    else:
        sys.stdout.write("\n")
    session.close()
    return 0
