"""``streamer bench model``: prefill and decode tokens/s of streamer vs transformers, in one run.

Writes (once, into ``--cache-dir``) a random mid-size Gemma 4 Unified checkpoint with transformers'
``save_pretrained``, loads it with streamer (:func:`~streamer.model.weights.load_model`) and with
``Gemma4UnifiedForConditionalGeneration.from_pretrained`` in the same dtype, on the same device and
torch thread count, then times both on one prompt of random text ids, alternating repeat by repeat:

* **prefill** — streamer: a fresh cache + :func:`~streamer.engine.generate.prefill` (embedding
  included); reference: one forward with ``use_cache=True, logits_to_keep=1``.
  tokens/s = prompt tokens / median seconds.
* **decode** — greedy, ``N`` new tokens after the prompt with a KV cache. streamer:
  :func:`~streamer.engine.generate.decode_step` after ``prefill``; reference:
  ``generate(max_new_tokens=N, min_new_tokens=N, do_sample=False)`` with a streamer object that
  timestamps every token. The first new token comes from the prefill, so only the ``N - 1``
  steps after it are timed on both sides. tokens/s = (N - 1) / median seconds.

Ratios are streamer / reference (above 1 = streamer faster); targets: prefill ≥ 1.0×, decode ≥
1.5×. Beside them, the **decode bound**: tokens/s of the decode step's matrix-vector products
alone over the same weights. Batch-1 decode streams every weight once per token, so on a CPU this
is about the most any implementation can reach, and its ratio to the reference is the best decode
ratio possible on the machine. The greedy tokens of both are compared and the 1-minute load
average is recorded (other processes on the CPUs skew every figure).

A benchmark, not a test: nothing is asserted and the exit code is 0 whether or not the targets
are met. Raises :class:`StreamerError` (one line at the CLI) when transformers is missing or
cannot import the model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from streamer import jsonio
from streamer.benchmarks.checkpoint import (
    MAX_POSITIONS,
    SPECIAL_TOKENS,
    Shape,
    add_shape_arguments,
    ensure_checkpoint,
    require_transformers,
    shape_of,
)
from streamer.cli.args import SEED, THREADS, device, number
from streamer.errors import StreamerError

if TYPE_CHECKING:  # annotations only: torch is imported inside run()
    from pathlib import Path

    import torch

    from streamer.model.cache import LayerCache
    from streamer.model.weights import LoadedModel

__all__ = ["add_arguments", "run"]

PREFILL_TARGET = 1.0  # streamer / reference prefill tokens/s
DECODE_TARGET = 1.5  # streamer / reference decode tokens/s


@dataclass
class Figures:
    """One phase, both implementations."""

    streamer_tok_s: float  # tokens per second
    reference_tok_s: float  # tokens per second
    streamer_s: list[float]  # seconds of each repeat
    reference_s: list[float]  # seconds of each repeat
    ratio: float  # streamer_tok_s / reference_tok_s
    target: float  # ratio the issue asks for
    met: bool  # ratio >= target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_shape_arguments(parser)  # the shape flags and --cache-dir, shared with the other benchmarks
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--prompt", type=number(int, 1, MAX_POSITIONS - 2), default=1024, help="prompt tokens (default: 1024)"
    )
    run_group.add_argument(
        "--new-tokens", type=number(int, 2, MAX_POSITIONS - 1), default=128,
        help="greedy tokens decoded (default: 128)",
    )  # fmt: skip
    run_group.add_argument(
        "--repeats", type=number(int, 1, 1000), default=3, help="timed repeats per phase, median (default: 3)"
    )
    run_group.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="weights (default: float32)",
    )
    run_group.add_argument(
        "--threads", type=THREADS, default=None, help="torch threads (default: torch's own)"
    )
    run_group.add_argument("--device", type=device, default="cpu", help="torch device (default: cpu)")
    run_group.add_argument(
        "--seed", type=SEED, default=0, help="seed of the weights and the prompt (default: 0)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    import torch

    transformers = require_transformers()
    shape = shape_of(args)
    if args.prompt < 1 or args.new_tokens < 2 or args.repeats < 1:
        raise StreamerError("--prompt must be >= 1, --new-tokens >= 2 and --repeats >= 1")
    if args.prompt + args.new_tokens > MAX_POSITIONS:
        raise StreamerError(f"--prompt + --new-tokens must be at most {MAX_POSITIONS}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    path = ensure_checkpoint(transformers, shape, args.cache_dir, args.seed)
    ours, ref = _load_both(transformers, path, args.dtype, args.device)
    ids = _prompt(shape, args.prompt, args.seed, ours.device)
    load_before = _load_average()
    report = {
        "device": str(ours.device),
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "reference_attention": getattr(ref.config, "_attn_implementation", None),
        "config": asdict(shape),
        "checkpoint": str(path),
        "prompt_tokens": args.prompt,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        **_measure(ours, ref, ids, args.new_tokens, args.repeats),
        "load_average_1m": [load_before, _load_average()],
    }
    print(jsonio.dumps(report) if args.json else _table(report))
    return 0


def _measure(ours: LoadedModel, ref: Any, ids: torch.Tensor, new_tokens: int, repeats: int) -> dict[str, Any]:
    """Every timed figure; each repeat runs streamer then the reference, so drift in load hits both alike."""
    logit_diff = _warm_up(ours, ref, ids)
    prefill_s: tuple[list[float], list[float]] = ([], [])
    decode_s: tuple[list[float], list[float]] = ([], [])
    bound_s: list[float] = []
    ours_tokens: list[int] = []
    ref_tokens: list[int] = []
    for _ in range(repeats):
        prefill_s[0].append(_streamer_prefill(ours, ids, new_tokens))
        prefill_s[1].append(_reference_prefill(ref, ids))
    for _ in range(repeats):
        seconds, ours_tokens = _streamer_decode(ours, ids, new_tokens)
        decode_s[0].append(seconds)
        seconds, ref_tokens = _reference_decode(ref, ids, new_tokens)
        decode_s[1].append(seconds)
        bound_s.append(_weights_bound(ours, new_tokens - 1))
    decode = _figures(new_tokens - 1, *decode_s, DECODE_TARGET)
    bound = (new_tokens - 1) / statistics.median(bound_s)
    return {
        "prefill": asdict(_figures(ids.shape[1], *prefill_s, PREFILL_TARGET)),
        "decode": asdict(decode),
        "decode_weights_bound_tok_s": bound,
        "decode_bound_over_reference": bound / decode.reference_tok_s,
        "tokens_match": ours_tokens == ref_tokens,
        "tokens_agreeing": _common_prefix(ours_tokens, ref_tokens),
        "prefill_max_abs_logit_diff": logit_diff,
    }


def _load_average() -> float | None:
    """1-minute load average (other processes skew CPU timings), None where the OS has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


# ---- setup ----------------------------------------------------------------------------------------
def _load_both(transformers: Any, path: Path, dtype: str, device: str) -> tuple[LoadedModel, Any]:
    from streamer.model.weights import load_model

    ours = load_model(path, dtype=dtype, device=device)
    ref = transformers.Gemma4UnifiedForConditionalGeneration.from_pretrained(str(path), dtype=ours.dtype)
    return ours, ref.to(ours.device).eval()


def _prompt(shape: Shape, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """``[1, n]`` random ids, none of them a special token (0 pad, 1 eos, 2 bos, the media ids on top)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, shape.vocab - SPECIAL_TOKENS, (1, n), generator=gen).to(device)


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- the timed phases ---------------------------------------------------------------------------
def _streamer_prefill_logits(
    ours: LoadedModel, ids: torch.Tensor, room: int
) -> tuple[torch.Tensor, list[list[LayerCache | None]]]:
    """Last-token logits ``[1, vocab]`` of ``ids`` through a fresh cache with ``room`` spare slots, and the cache."""
    from streamer.engine.generate import prefill
    from streamer.model.attention import TokenMeta
    from streamer.model.cache import make_cache

    n = ids.shape[1]
    caches = [make_cache(ours.config.text, n + room, ours.dtype, ours.device)]
    embeds = ours.model.embed_tokens(ids)
    return prefill(ours.model, embeds, TokenMeta.contiguous(1, n, device=ours.device), caches), caches


def _reference_prefill_logits(ref: Any, ids: torch.Tensor) -> torch.Tensor:
    import torch

    with torch.inference_mode():
        out = ref(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)
    return out.logits[:, -1].float()


def _warm_up(ours: LoadedModel, ref: Any, ids: torch.Tensor) -> float:
    """One untimed prefill and a short decode on each side; max |Δ| of the prefill logits."""
    theirs = _reference_prefill_logits(ref, ids)
    mine, _ = _streamer_prefill_logits(ours, ids, 0)
    _streamer_decode(ours, ids[:, :16], 4)
    _reference_decode(ref, ids[:, :16], 4)
    return float((mine.float() - theirs).abs().max())


def _streamer_prefill(ours: LoadedModel, ids: torch.Tensor, room: int) -> float:
    _sync(ours.device)
    start = time.perf_counter()
    _streamer_prefill_logits(ours, ids, room)
    _sync(ours.device)
    return time.perf_counter() - start


def _reference_prefill(ref: Any, ids: torch.Tensor) -> float:
    _sync(ids.device)
    start = time.perf_counter()
    _reference_prefill_logits(ref, ids)
    _sync(ids.device)
    return time.perf_counter() - start


def _streamer_decode(ours: LoadedModel, ids: torch.Tensor, n: int) -> tuple[float, list[int]]:
    """Seconds of the ``n - 1`` decode steps after the prefill's token, and the ``n`` greedy tokens."""
    import torch

    from streamer.engine.generate import decode_step

    logits, caches = _streamer_prefill_logits(ours, ids, n)
    tokens = [int(logits[0].argmax())]
    start = time.perf_counter()
    for step in range(n - 1):
        pos = torch.tensor([ids.shape[1] + step], device=ids.device)
        logits = decode_step(ours.model, torch.tensor([tokens[-1]], device=ids.device), pos, pos, caches)
        tokens.append(int(logits[0].argmax()))  # reads the token back, as a server would: a sync point
    return time.perf_counter() - start, tokens


class _TokenClock:
    """A ``generate(streamer=...)`` sink: the time each token arrives. The first ``put`` is the prompt."""

    def __init__(self) -> None:
        self.times: list[float] = []  # perf_counter seconds, one per put
        self.tokens: list[int] = []  # generated ids

    def put(self, value: torch.Tensor) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) > 1:
            self.tokens.extend(int(t) for t in value.flatten())

    def end(self) -> None:
        pass


def _reference_decode(ref: Any, ids: torch.Tensor, n: int) -> tuple[float, list[int]]:
    """Seconds between the reference's first and ``n``-th new token, and its ``n`` greedy tokens."""
    import torch

    clock = _TokenClock()
    with torch.inference_mode():
        ref.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
            do_sample=False, eos_token_id=None, pad_token_id=0, streamer=clock,
        )  # fmt: skip
    if len(clock.times) != n + 1:
        raise StreamerError(f"the reference generate streamed {len(clock.times) - 1} tokens, expected {n}")
    return clock.times[-1] - clock.times[1], clock.tokens


def _weights_bound(ours: LoadedModel, steps: int) -> float:
    """Seconds for ``steps`` passes of only the decode step's matrix-vector products over the same weights.

    Batch-1 decode must stream every weight once per token; on a CPU that is memory-bound, so
    ``steps / seconds`` is about the most tokens/s any implementation of this model can decode here.
    """
    import torch
    import torch.nn.functional as F

    weights = [w for w in ours.model.model.language_model.layers.parameters() if w.dim() == 2]
    inputs = {w.shape[1]: torch.randn(1, w.shape[1], dtype=ours.dtype, device=ours.device) for w in weights}
    hidden = torch.randn(1, ours.config.text.hidden_size, dtype=ours.dtype, device=ours.device)
    with torch.inference_mode():
        _sync(ours.device)
        start = time.perf_counter()
        for _ in range(steps):
            for w in weights:
                F.linear(inputs[w.shape[1]], w)
            ours.model.logits(hidden)
        _sync(ours.device)
    return time.perf_counter() - start


# ---- report ---------------------------------------------------------------------------------------
def _figures(tokens: int, ours_s: list[float], ref_s: list[float], target: float) -> Figures:
    ours_rate = tokens / statistics.median(ours_s)
    ref_rate = tokens / statistics.median(ref_s)
    ratio = ours_rate / ref_rate
    return Figures(ours_rate, ref_rate, ours_s, ref_s, ratio, target, ratio >= target)


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _table(r: dict[str, Any]) -> str:
    c = r["config"]
    full = sum(1 for i in range(c["layers"]) if (i + 1) % 6 == 0 or i == c["layers"] - 1)
    lines = [
        f"streamer bench model   device {r['device']}   {r['dtype']}   threads {r['threads']}   "
        f"torch {r['torch']}   transformers {r['transformers']} (attention: {r['reference_attention']})",
        f"config: hidden {c['hidden']}, layers {c['layers']} ({c['layers'] - full} sliding + {full} full), "
        f"heads {c['heads']} / {c['kv_heads']} kv, head_dim {c['head_dim']} / {c['global_head_dim']} global, "
        f"mlp {c['intermediate']}, window {c['sliding_window']}, vocab {c['vocab']}",
        f"prompt {r['prompt_tokens']} tokens, decode {r['new_tokens']} tokens "
        f"({r['new_tokens'] - 1} timed steps), median of {r['repeats']}",
        "",
        f"{'phase':<9}{'streamer tok/s':>16}{'transformers tok/s':>20}{'ratio':>9}{'target':>10}",
    ]
    for phase in ("prefill", "decode"):
        f = r[phase]
        lines.append(
            f"{phase:<9}{f['streamer_tok_s']:>16.1f}{f['reference_tok_s']:>20.1f}{f['ratio']:>8.2f}x"
            f"{'>= ' + format(f['target'], '.2f') + 'x':>10}  {'met' if f['met'] else 'MISSED'}"
        )
    agree = f"{r['tokens_agreeing']}/{r['new_tokens']}"
    load = ", ".join("?" if x is None else f"{x:.2f}" for x in r["load_average_1m"])
    lines += [
        f"{'decode bound':<13}{r['decode_weights_bound_tok_s']:>12.1f}"
        f"{'':>20}{r['decode_bound_over_reference']:>8.2f}x  (the weights' matrix-vector products alone)",
        "",
        f"greedy tokens: {'match' if r['tokens_match'] else 'DIFFER'} ({agree} agree before the first difference)"
        f"   prefill last-token max |dlogit| {r['prefill_max_abs_logit_diff']:.2e}",
        f"1-min load average before, after: {load} (timings are skewed when other processes share the CPUs)",
    ]
    return "\n".join(lines)
