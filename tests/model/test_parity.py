"""streamer's model vs the transformers reference on tiny random checkpoints of several shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checkpoints import VARIANTS

from streamer.engine.generate import greedy_generate
from streamer.model.cache import make_cache
from streamer.model.inputs import Image, Text, embed_layout, layout, meta_for
from streamer.model.preprocess import image_to_patches
from streamer.model.weights import load_model
from streamer.verify import run_verify


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_verify_battery_passes(checkpoint_factory, variant):
    shard = "100KB" if variant == "odd-pattern-rope" else None
    path = checkpoint_factory(variant, shard)
    dtype = "bfloat16" if variant == "bf16" else "float32"
    report = run_verify(path, dtype=dtype)
    names = [c.name for c in report.cases]
    assert names == [
        "text",
        "text+image",
        "text+video",
        "text+audio",
        "longer-than-window",
        "batch-2-unequal",
    ]
    for case in report.cases:
        assert case.passed, case
        if dtype == "float32":
            assert case.max_abs_diff <= 1e-4 and case.greedy_match, case
    assert report.reference.startswith("transformers ")


def _reference(path):
    from transformers import Gemma4UnifiedForConditionalGeneration

    return Gemma4UnifiedForConditionalGeneration.from_pretrained(str(path), dtype=torch.float32).eval()


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_greedy_32_tokens_match_reference_generate(tiny_checkpoint, with_image):
    loaded = load_model(tiny_checkpoint, dtype="float32")
    ref = _reference(tiny_checkpoint)
    rng = np.random.default_rng(1)
    segs = [Text([int(t) for t in rng.integers(10, 400, 9)])]
    if with_image:
        picture = rng.integers(0, 256, size=(61, 130, 3), dtype=np.uint8)
        segs += [Image(image_to_patches(picture, loaded.config.vision, 70)), Text([20, 21, 22])]
    lay = layout(loaded.config, segs)
    caches = [make_cache(loaded.config.text, len(lay) + 32, torch.float32, "cpu")]
    ours = greedy_generate(loaded.model, embed_layout(loaded.model, lay)[None], meta_for(lay), caches, 32)

    kwargs = {
        "input_ids": torch.tensor([lay.ids]),
        "attention_mask": torch.ones(1, len(lay), dtype=torch.long),
    }
    if with_image:
        p = segs[1].patches
        pix = torch.zeros(1, 280, p.pixels.shape[1])
        pos = torch.full((1, 280, 2), -1, dtype=torch.long)
        pix[0, : p.num_tokens], pos[0, : p.num_tokens] = p.pixels, p.positions
        kwargs.update(pixel_values=pix, image_position_ids=pos, mm_token_type_ids=torch.tensor([lay.kinds]))
    with torch.inference_mode():
        out = ref.generate(
            **kwargs, max_new_tokens=32, min_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    assert ours == out[0, len(lay) :].tolist()
    assert len(ours) == 32


def test_chunked_prefill_with_cache_equals_one_forward(tiny_checkpoint):
    """Prefilling in many small chunks (crossing the sliding window) gives the one-shot logits."""
    loaded = load_model(tiny_checkpoint, dtype="float32")
    model, cfg = loaded.model, loaded.config
    rng = np.random.default_rng(2)
    picture = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    segs = [
        Text(list(range(10, 40))),
        Image(image_to_patches(picture, cfg.vision, 70)),
        Text(list(range(40, 70))),
    ]
    lay = layout(cfg, segs)
    embeds = embed_layout(model, lay)[None]
    meta = meta_for(lay)
    with torch.inference_mode():
        whole = model.logits(model(embeds, meta))[0]
    caches = [make_cache(cfg.text, len(lay), torch.float32, "cpu")]
    # Chunk boundaries: never split the image block (it is bidirectional).
    start_img = lay.media[0][0]
    bounds = [0, 7, 19, start_img, start_img + segs[1].patches.num_tokens, len(lay) - 5, len(lay)]
    pieces = []
    with torch.inference_mode():
        for a, b in zip(bounds, bounds[1:], strict=False):
            sub = type(meta)(meta.positions[:, a:b], meta.seq_index[:, a:b], meta.block_ids[:, a:b])
            pieces.append(model.logits(model(embeds[:, a:b], sub, caches))[0])
    chunked = torch.cat(pieces)
    assert (chunked - whole).abs().max() < 1e-4


def test_image_content_reaches_the_logits(tiny_checkpoint):
    """Guard against a silently ignored image: different pixels must change the logits."""
    loaded = load_model(tiny_checkpoint, dtype="float32")
    cfg = loaded.config
    outs = []
    rng = np.random.default_rng(3)
    for _ in range(2):
        # Not uniform pictures: patch_ln1 normalises each patch, so any flat patch embeds the same.
        picture = rng.integers(0, 256, size=(48, 96, 3), dtype=np.uint8)
        lay = layout(cfg, [Text([11, 12]), Image(image_to_patches(picture, cfg.vision, 70)), Text([13])])
        with torch.inference_mode():
            outs.append(
                loaded.model.logits(loaded.model(embed_layout(loaded.model, lay)[None], meta_for(lay)))[0, -1]
            )
    assert (outs[0] - outs[1]).abs().max() > 1e-3
