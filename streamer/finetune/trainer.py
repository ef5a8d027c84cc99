"""The fine-tuning loop: JSONL examples → the served layouts → loss on the answers → a checkpoint.

Call :func:`finetune` with a :class:`FinetuneConfig`. Each optimizer step takes examples in a
seeded shuffled order (one pass after another) until they hold ``batch_tokens`` sequence tokens,
runs each through the model without a KV cache (the engine's masks: causal, frames both ways),
and averages the cross-entropy over their answer tokens. AdamW, linear warm-up, cosine decay to
``min_lr_fraction`` of the peak, gradients clipped. LoRA (peft, see :mod:`.lora`) or every
weight. Media is decoded ahead in a background thread.

Every ``save_every`` steps the state is saved (:mod:`.state`); ``resume=True`` continues from it.
Test hook: ``STREAMER_FINETUNE_STOP_AFTER_STEP=k`` raises KeyboardInterrupt right after the state
of step ``k`` is saved (an interrupted run).
At the end the weights (LoRA merged) are written in the source checkpoint's layout into ``out``
(:mod:`.output`), LoRA adapters also in peft's format under ``out/adapter``, and the run's
figures into ``out/finetune.json``.

Raises InputError (bad data or settings), MediaError, CheckpointError, TokenizerError.
"""

from __future__ import annotations

import itertools
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from streamer import jsonio
from streamer.engine.conversation import IGNORE_INDEX
from streamer.errors import InputError
from streamer.finetune.data import Example, ExampleSpec, MediaResolver, load_example, read_jsonl
from streamer.finetune.lora import add_lora, merge_lora, save_adapter
from streamer.finetune.output import write_checkpoint
from streamer.finetune.state import StateDir, TrainState
from streamer.model.gemma4_unified import Gemma4Unified
from streamer.model.inputs import embed_layout, meta_for
from streamer.model.tokenizer import load_tokenizer
from streamer.model.weights import load_model
from streamer.summarize.prefetch import Prefetch

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune", "example_loss", "STOP_ENV"]

_EMA = 0.95  # smoothing of the displayed loss
STOP_ENV = "STREAMER_FINETUNE_STOP_AFTER_STEP"  # test hook, see the module docstring
_LOG_EVERY = 10  # steps between entries of the run's history


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run."""

    model_dir: Path  # source checkpoint
    data: Path  # JSONL file (see streamer.finetune.data)
    out: Path  # output checkpoint directory (also holds the resumable state while training)
    lora_rank: int | None = 16  # LoRA rank; None = full fine-tuning
    lora_alpha: int | None = None  # LoRA scale numerator (default 2 x rank)
    steps: int | None = None  # optimizer steps (default: `epochs` passes over the data, estimated)
    epochs: float = 1.0  # passes over the data when `steps` is not given
    lr: float = 2e-4  # peak learning rate
    min_lr_fraction: float = 0.1  # the cosine decay ends at this share of `lr`
    warmup_steps: int | None = None  # linear warm-up (default: 5 % of the steps, at most 100)
    batch_tokens: int = 4096  # sequence tokens per optimizer step (whole examples, at least one)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # max global gradient norm
    seed: int = 0  # data order and adapter initialisation
    save_every: int = 100  # steps between saved states (and at the end)
    dtype: str = "float32"  # training dtype
    device: str = "cpu"
    media_cache: Path | None = None  # where generated demo media is written (default: beside the data)

    def __post_init__(self) -> None:
        checks = [
            (self.lora_rank is None or self.lora_rank >= 1, "--lora rank must be >= 1"),
            (self.steps is None or self.steps >= 1, "--steps must be >= 1"),
            (math.isfinite(self.epochs) and self.epochs > 0, "--epochs must be > 0"),
            (math.isfinite(self.lr) and self.lr > 0, "--lr must be > 0"),
            (0 <= self.min_lr_fraction <= 1, "the final learning-rate fraction must be in [0, 1]"),
            (self.batch_tokens >= 1, "--batch-tokens must be >= 1"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.grad_clip > 0, "--grad-clip must be > 0"),
            (self.save_every >= 1, "--save-every must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @property
    def mode(self) -> str:
        return "full" if self.lora_rank is None else "lora"

    def fingerprint(self, data_bytes: int) -> dict[str, Any]:
        """What a resumed run must share with the interrupted one."""
        keep = ("lora_rank", "lora_alpha", "steps", "epochs", "lr", "min_lr_fraction", "warmup_steps",
                "batch_tokens", "weight_decay", "grad_clip", "seed", "dtype")  # fmt: skip
        out = {k: getattr(self, k) for k in keep}
        out.update(model_dir=str(Path(self.model_dir).resolve()), data=str(Path(self.data).resolve()),
                   data_bytes=data_bytes)  # fmt: skip
        return out


@dataclass
class FinetuneResult:
    """Figures of a finished run (also written to ``out/finetune.json``)."""

    mode: str  # "lora" | "full"
    steps: int  # optimizer steps
    examples: int  # examples consumed (with repeats)
    tokens: int  # sequence tokens processed
    trained_tokens: int  # answer tokens that carried loss
    train_s: float  # wall seconds of training (all resumed parts together)
    cpu_s: float  # CPU seconds of training (all threads, all resumed parts together)
    tokens_per_s: float
    trainable_params: int
    total_params: int
    peak_rss_mb: float  # peak resident memory of this process, MiB
    final_loss: float | None  # running mean loss per answer token at the end
    out: str  # the output checkpoint directory
    history: list[dict[str, float]] = field(default_factory=list)


def example_loss(model: Gemma4Unified, example: Example) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the example's labelled tokens, and how many there are."""
    lay = example.layout
    device = model.model.language_model.embed_tokens.weight.device
    embeds = embed_layout(model, lay, device)[None]  # [1, S, hidden]
    hidden = model(embeds, meta_for(lay, device=device))[0]  # [S, hidden]
    labels = torch.tensor(example.labels, device=device)
    where = (labels != IGNORE_INDEX).nonzero()[:, 0]  # token i is predicted at position i - 1
    if where.numel() == 0:
        return hidden.sum() * 0.0, 0
    logits = model.logits(hidden[where - 1])  # [N, vocab] fp32
    return F.cross_entropy(logits, labels[where], reduction="sum"), int(where.numel())


def _order(n: int, seed: int) -> Iterator[int]:
    """Example indices: one seeded permutation per pass, forever."""
    for epoch in itertools.count():
        yield from np.random.default_rng([seed, epoch]).permutation(n).tolist()


def _lr(config: FinetuneConfig, step: int, total: int) -> float:
    warmup = config.warmup_steps if config.warmup_steps is not None else min(100, max(1, total // 20))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    low = config.lr * config.min_lr_fraction
    return low + (config.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))


def _demo_resolver(cache: Path) -> MediaResolver:
    def resolve(spec: dict[str, Any]) -> Path:
        from streamer.demo.dataset import materialize

        return materialize(spec, cache)

    return resolve


class _Run:
    """Model, optimizer and data of one run (built by :func:`finetune`)."""

    def __init__(self, config: FinetuneConfig):
        self.config = config
        data = Path(config.data)
        self.specs: list[ExampleSpec] = read_jsonl(data)
        self.fingerprint = config.fingerprint(data.stat().st_size)
        torch.manual_seed(config.seed)
        self.loaded = load_model(config.model_dir, dtype=config.dtype, device=config.device, trainable=True)
        self.tokenizer = load_tokenizer(config.model_dir)
        self.model: Gemma4Unified = self.loaded.model
        self.module: torch.nn.Module = self.model
        if config.lora_rank is not None:
            self.module = add_lora(self.model, config.lora_rank, config.lora_alpha)
        self.params = {n: p for n, p in self.module.named_parameters() if p.requires_grad}
        decay = config.weight_decay
        groups = [
            {"params": [p for p in self.params.values() if p.ndim >= 2], "weight_decay": decay},
            {"params": [p for p in self.params.values() if p.ndim < 2], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-8)
        self.resolve = _demo_resolver(Path(config.media_cache or data.parent / ".media-cache"))

    def build(self, index: int) -> Example:
        return load_example(self.specs[index], self.loaded.config, self.tokenizer, self.resolve)

    def total_steps(self) -> int:
        """``steps``, or ``epochs`` passes estimated from the first (up to 8) examples' lengths."""
        if self.config.steps is not None:
            return self.config.steps
        sample = [len(self.build(i)) for i in range(min(8, len(self.specs)))]
        per_step = max(1.0, self.config.batch_tokens / (sum(sample) / len(sample)))
        return max(1, math.ceil(self.config.epochs * len(self.specs) / per_step))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.params.items()}

    def restore(self, tensors: dict[str, torch.Tensor], optimizer: dict[str, Any]) -> None:
        missing = sorted(set(self.params) - set(tensors))
        if missing:
            raise InputError(f"the saved training state lacks {len(missing)} tensor(s), e.g. {missing[0]}")
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(tensors[name])
        self.optimizer.load_state_dict(optimizer)

    def step(self, batch: list[Example], lr: float) -> float:
        """One optimizer step over ``batch``; the mean loss per answer token."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        labelled = sum(e.trained_tokens for e in batch)
        total = 0.0
        for example in batch:
            loss, n = example_loss(self.model, example)
            if n:
                (loss / labelled).backward()
                total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / max(labelled, 1)


Progress = Callable[[TrainState, int, float], None]  # (state, total steps, tokens/s) after each step


def _tqdm_progress(total_hint: int) -> tuple[Progress, Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total_hint, desc="finetune", unit="step", file=sys.stderr, dynamic_ncols=True,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)  # fmt: skip

    def update(state: TrainState, total: int, tok_s: float) -> None:
        bar.total = total
        bar.n = state.step
        bar.set_postfix(loss=f"{state.loss_ema:.4f}", tok_s=f"{tok_s:,.0f}", refresh=False)
        bar.refresh() if sys.stderr.isatty() else bar.update(0)

    return update, bar.close


def finetune(config: FinetuneConfig, *, resume: bool = False, quiet: bool = False) -> FinetuneResult:
    """Train (see the module docstring) and write the output checkpoint; the run's figures."""
    out = Path(config.out)
    states = StateDir(out)
    if resume and not states.exists():
        raise InputError(f"{out}: no interrupted run to resume (no {states.path.name}/)")
    if not resume and out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already exists and is not empty (use --resume to continue a run there)")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    run = _Run(config)
    state = TrainState(run.fingerprint)
    if resume:
        state, tensors, optimizer = states.load(run.fingerprint)
        run.restore(tensors, optimizer)
    total = run.total_steps()
    update, close = _tqdm_progress(total) if not quiet else ((lambda *_: None), (lambda: None))
    t0 = time.perf_counter()
    elapsed0, cpu0, tokens0, p0 = state.elapsed_s, state.cpu_s, state.tokens, time.process_time()
    order = _order(len(run.specs), config.seed)
    for _ in range(state.consumed):
        next(order)
    # Math SDPA: on CPU it trains faster than the fused kernels with the engine's boolean masks.
    backend = SDPBackend.MATH if torch.device(config.device).type == "cpu" else SDPBackend.EFFICIENT_ATTENTION
    try:
        with (
            Prefetch((run.build(i) for i in order), depth=4) as examples,
            sdpa_kernel([backend, SDPBackend.MATH]),
        ):
            stream = iter(examples)
            while state.step < total:
                batch = [next(stream)]
                while sum(len(e) for e in batch) < config.batch_tokens:
                    batch.append(next(stream))
                loss = run.step(batch, _lr(config, state.step, total))
                state.step += 1
                state.consumed += len(batch)
                state.tokens += sum(len(e) for e in batch)
                state.trained_tokens += sum(e.trained_tokens for e in batch)
                state.loss_ema = loss if state.loss_ema is None else _EMA * state.loss_ema + (1 - _EMA) * loss
                state.elapsed_s = elapsed0 + time.perf_counter() - t0
                state.cpu_s = cpu0 + time.process_time() - p0
                tok_s = (state.tokens - tokens0) / max(time.perf_counter() - t0, 1e-9)
                if state.step % _LOG_EVERY == 0 or state.step in (1, total):
                    state.history.append({"step": state.step, "loss": round(loss, 5), "loss_ema": round(state.loss_ema, 5),
                                          "lr": _lr(config, state.step - 1, total), "tokens": state.tokens,
                                          "elapsed_s": round(state.elapsed_s, 2)})  # fmt: skip
                update(state, total, tok_s)
                if state.step % config.save_every == 0 and state.step < total:
                    states.save(state, run.trainable_state(), run.optimizer.state_dict())
                    if os.environ.get(STOP_ENV) == str(state.step):
                        raise KeyboardInterrupt
    finally:
        close()
    return _finish(run, state, states, out)


def _finish(run: _Run, state: TrainState, states: StateDir, out: Path) -> FinetuneResult:
    config = run.config
    states.save(state, run.trainable_state(), run.optimizer.state_dict())
    model = run.model
    if config.lora_rank is not None:
        save_adapter(run.module, out / "adapter")
        model = merge_lora(run.module)  # type: ignore[assignment]
    write_checkpoint(model, run.loaded.config, Path(config.model_dir), out)
    total_params = sum(p.numel() for p in model.parameters())
    result = FinetuneResult(
        mode=config.mode, steps=state.step, examples=state.consumed, tokens=state.tokens,
        trained_tokens=state.trained_tokens, train_s=round(state.elapsed_s, 2), cpu_s=round(state.cpu_s, 1),
        tokens_per_s=round(state.tokens / max(state.elapsed_s, 1e-9), 1),
        trainable_params=sum(p.numel() for p in run.params.values()), total_params=total_params,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        final_loss=state.loss_ema, out=str(out), history=state.history,
    )  # fmt: skip
    (out / "finetune.json").write_text(jsonio.dumps(asdict(result), indent=1), encoding="utf-8")
    states.remove()
    return result
