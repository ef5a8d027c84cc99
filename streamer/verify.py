"""Check a checkpoint against the transformers reference on a built-in battery of inputs.

Needs only ``config.json`` and the weights. Each case builds one unified sequence from a seed
(random token ids standing for text, random pictures, random waveforms), runs it through
streamer and through ``transformers``' ``Gemma4UnifiedForConditionalGeneration``, and compares
the logits at every real token and the greedy next token at every position. The text case also
compares 8 greedily generated tokens (streamer's KV-cache decode vs the reference ``generate``).

Tolerance: fp32 → 1e-4 absolute on logits. bf16/fp16 → the two implementations round
differently, so the bound is calibrated per case from the reference's own rounding error:
``max(4 × |ref_lowp − ref_fp32|, 1e-2)``. A streamer result within a few times the
reference's own rounding noise is as close to the reference as the reference is to exact math.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamer.engine.generate import greedy_generate
from streamer.errors import StreamerError
from streamer.model.attention import TokenMeta
from streamer.model.cache import make_cache
from streamer.model.config import ModelConfig
from streamer.model.inputs import Audio, Image, Layout, Segment, Text, embed_layout, layout, meta_for
from streamer.model.preprocess import IMAGE_SOFT_TOKENS, VIDEO_SOFT_TOKENS, image_to_patches
from streamer.model.weights import LoadedModel, load_model

__all__ = ["CaseResult", "VerifyReport", "run_verify"]

FP32_TOLERANCE = 1e-4
GENERATE_TOKENS = 8


@dataclass
class CaseResult:
    name: str
    max_abs_diff: float  # largest |logit difference| over real tokens
    greedy_match: bool  # argmax equal at every real token (and generated tokens equal)
    tolerance: float  # bound max_abs_diff is held to
    tokens: int  # sequence length (per row)
    passed: bool


@dataclass
class VerifyReport:
    reference: str  # "transformers X.Y.Z"
    dtype: str
    cases: list[CaseResult]
    max_abs_diff: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "dtype": self.dtype,
            "passed": self.passed,
            "cases": [asdict(c) for c in self.cases],
            "max_abs_diff": self.max_abs_diff,
        }


def _text_ids(config: ModelConfig, rng: np.random.Generator, n: int) -> list[int]:
    """Random ids that are not special tokens of the checkpoint."""
    special = {
        v
        for v in (
            config.image_token_id,
            config.video_token_id,
            config.audio_token_id,
            config.boi_token_id,
            config.eoi_token_id,
            config.boa_token_id,
            config.eoa_token_id,
            config.text.pad_token_id,
        )
        if v is not None
    }
    vocab = config.text.vocab_size
    low = 3 if vocab > 64 else 0
    out: list[int] = []
    while len(out) < n:
        t = int(rng.integers(low, vocab))
        if t not in special:
            out.append(t)
    return out


def _picture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _cases(config: ModelConfig, rng: np.random.Generator) -> list[tuple[str, list[list[Segment]]]]:
    text = lambda n: Text(_text_ids(config, rng, n))  # noqa: E731
    window = config.text.effective_sliding_window
    cases: list[tuple[str, list[list[Segment]]]] = [("text", [[text(24)]])]
    if config.vision is not None:
        image = Image(image_to_patches(_picture(rng, 67, 101), config.vision, IMAGE_SOFT_TOKENS))
        cases.append(("text+image", [[text(5), image, text(7)]]))
        frames: list[Segment] = [text(3)]
        for _ in range(3):
            frame = image_to_patches(_picture(rng, 90, 160), config.vision, VIDEO_SOFT_TOKENS, video=True)
            frames += [text(3), Image(frame, video=True)]  # text(3) stands for the "mm:ss " timestamp
        cases.append(("text+video", [frames + [text(6)]]))
    if config.audio is not None:
        n = config.audio.samples_per_token
        wave = rng.standard_normal(int(n * 7.5)).astype(np.float32) * 0.1
        padded = np.pad(wave, (0, (-len(wave)) % n)).reshape(-1, n)
        cases.append(("text+audio", [[text(4), Audio(torch.from_numpy(padded)), text(5)]]))
    cases.append(("longer-than-window", [[text(2 * window + 17)]]))
    cases.append(("batch-2-unequal", [[text(19)], [text(11)]]))
    return cases


def _reference_inputs(config: ModelConfig, lays: list[Layout]) -> dict[str, torch.Tensor]:
    """Inputs for the reference model, left-padded to one length."""
    length = max(len(lay) for lay in lays)
    pad = config.text.pad_token_id or 0
    ids = torch.full((len(lays), length), pad, dtype=torch.long)
    mask = torch.zeros((len(lays), length), dtype=torch.long)
    mm = torch.zeros((len(lays), length), dtype=torch.long)
    images: list[Image] = []
    frames: list[Image] = []
    audio: list[torch.Tensor] = []
    for row, lay in enumerate(lays):
        off = length - len(lay)
        ids[row, off:] = torch.tensor(lay.ids)
        mask[row, off:] = 1
        mm[row, off:] = torch.tensor(lay.kinds)
        for _, seg in lay.media:
            if isinstance(seg, Image):
                (frames if seg.video else images).append(seg)
            elif isinstance(seg, Audio):
                audio.append(seg.frames)
    out: dict[str, torch.Tensor] = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm}
    for key, group, budget in (("", images, IMAGE_SOFT_TOKENS), ("_videos", frames, VIDEO_SOFT_TOKENS)):
        if not group:
            continue
        assert config.vision is not None
        pix = torch.zeros(len(group), budget, config.vision.patch_dim)
        pos = torch.full((len(group), budget, 2), -1, dtype=torch.long)
        for i, seg in enumerate(group):
            n = seg.patches.num_tokens
            pix[i, :n] = seg.patches.pixels
            pos[i, :n] = seg.patches.positions
        out[f"pixel_values{key}"] = pix
        out["image_position_ids" if not key else "video_position_ids"] = pos
        if key:
            out["num_frames_per_video"] = torch.tensor([len(group)])
    if audio:
        width = max(a.shape[0] for a in audio)
        feats = torch.zeros(len(audio), width, audio[0].shape[1])
        fmask = torch.zeros(len(audio), width, dtype=torch.bool)
        for i, a in enumerate(audio):
            feats[i, : a.shape[0]] = a
            fmask[i, : a.shape[0]] = True
        out["input_features"], out["input_features_mask"] = feats, fmask
    return out


def _streamer_logits(loaded: LoadedModel, lays: list[Layout]) -> torch.Tensor:
    """Logits ``[B, S, vocab]`` left-padded like the reference inputs (padding rows are zero)."""
    model = loaded.model
    length = max(len(lay) for lay in lays)
    hidden = model.config.text.hidden_size
    embeds = torch.zeros(len(lays), length, hidden, dtype=loaded.dtype, device=loaded.device)
    positions = torch.zeros(len(lays), length, dtype=torch.long)
    blocks = torch.full((len(lays), length), -1, dtype=torch.long)
    valid = torch.zeros(len(lays), length, dtype=torch.bool)
    for row, lay in enumerate(lays):
        off = length - len(lay)
        embeds[row, off:] = embed_layout(model, lay)
        positions[row, off:] = torch.arange(len(lay))
        blocks[row, off:] = torch.tensor(lay.block_ids)
        valid[row, off:] = True
    seq = torch.arange(length).expand(len(lays), length)
    dev = loaded.device
    meta = TokenMeta(
        positions=positions.to(dev),
        seq_index=seq.to(dev),
        block_ids=blocks.to(dev),
        valid=valid.to(dev) if len(lays) > 1 else None,
    )
    with torch.inference_mode():
        return model.logits(model(embeds, meta))


def _reference_logits(
    ref: Any, inputs: dict[str, torch.Tensor], lays: list[Layout], device: torch.device
) -> torch.Tensor:
    length = inputs["input_ids"].shape[1]
    positions = torch.zeros_like(inputs["input_ids"])
    for row, lay in enumerate(lays):
        positions[row, length - len(lay) :] = torch.arange(len(lay))
    dtype = next(ref.parameters()).dtype
    kwargs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
    with torch.inference_mode():
        return ref(**kwargs, position_ids=positions.to(device)).logits.float()


def _compare(ours: torch.Tensor, theirs: torch.Tensor, lays: list[Layout]) -> tuple[float, bool]:
    length = ours.shape[1]
    worst, greedy = 0.0, True
    for row, lay in enumerate(lays):
        sl = slice(length - len(lay), length)
        a, b = ours[row, sl].float().cpu(), theirs[row, sl].float().cpu()
        worst = max(worst, float((a - b).abs().max()))
        greedy = greedy and bool((a.argmax(-1) == b.argmax(-1)).all())
    return worst, greedy


def _generate_match(loaded: LoadedModel, ref: Any, lay: Layout, device: torch.device) -> bool:
    embeds = embed_layout(loaded.model, lay)[None]
    caches = [make_cache(loaded.config.text, len(lay) + GENERATE_TOKENS, loaded.dtype, device)]
    ours = greedy_generate(loaded.model, embeds, meta_for(lay, device=device), caches, GENERATE_TOKENS)
    ids = torch.tensor([lay.ids], device=device)
    with torch.inference_mode():
        out = ref.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=GENERATE_TOKENS,
            min_new_tokens=GENERATE_TOKENS,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    theirs = out[0, len(lay) :].tolist()
    return ours == theirs[: len(ours)]


def _load_reference(path: Path, dtype: torch.dtype, device: torch.device) -> tuple[Any, str]:
    try:
        transformers = importlib.import_module("transformers")
        cls = transformers.Gemma4UnifiedForConditionalGeneration
    except (ImportError, AttributeError) as exc:
        raise StreamerError(
            "verify needs the reference implementation: pip install 'transformers>=5.24' (or streamer[test])"
        ) from exc
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    ref = cls.from_pretrained(str(path), dtype=dtype).to(device).eval()
    return ref, f"transformers {transformers.__version__}"


def run_verify(
    model_dir: str | Path,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Run the battery; raise :class:`StreamerError` if either implementation cannot load."""
    loaded = load_model(model_dir, dtype=dtype, device=device)
    dev = loaded.device
    ref, ref_name = _load_reference(loaded.path, loaded.dtype, dev)
    rng = np.random.default_rng(seed)
    low_precision = loaded.dtype != torch.float32
    results: list[CaseResult] = []
    for name, rows in _cases(loaded.config, rng):
        if progress:
            progress(name)
        lays = [layout(loaded.config, segs) for segs in rows]
        inputs = _reference_inputs(loaded.config, lays)
        ours = _streamer_logits(loaded, lays)
        theirs = _reference_logits(ref, inputs, lays, dev)
        diff, greedy = _compare(ours, theirs, lays)
        tolerance = FP32_TOLERANCE
        if low_precision:
            ref.float()
            exact = _reference_logits(ref, inputs, lays, dev)
            ref.to(loaded.dtype)
            noise, _ = _compare(theirs, exact, lays)
            tolerance = max(4 * noise, 1e-2)
        if name == "text" and not low_precision:
            greedy = greedy and _generate_match(loaded, ref, lays[0], dev)
        # In low precision near-ties may flip the argmax; the logit bound is the criterion there.
        passed = diff <= tolerance and (greedy or low_precision)
        results.append(CaseResult(name, diff, greedy, tolerance, max(len(lay) for lay in lays), passed))
    worst = max(r.max_abs_diff for r in results)
    return VerifyReport(
        reference=ref_name, dtype=str(loaded.dtype).replace("torch.", ""), cases=results, max_abs_diff=worst
    )
