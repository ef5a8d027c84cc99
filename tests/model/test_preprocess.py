"""Pixels → merged patches: parity with the reference image and video processors.

The reference processors import torchvision, whose PyPI wheels do not load beside the CPU torch
build CI uses. When torchvision is importable the full reference processors are the oracle.
Otherwise the reference's own patchify/merge/size functions are the oracle and the resize is
torchvision's CPU uint8 bicubic path written out (``interpolate(uint8, bicubic, antialias)``,
read from torchvision 0.2x ``resize_image``), loaded with a stand-in ``torchvision`` module that
only satisfies the import line.
"""

from __future__ import annotations

import importlib
import re
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from streamer.errors import InputError
from streamer.model.config import VisionConfig
from streamer.model.preprocess import fit_to_budget, image_to_patches, mmss

try:
    import torchvision  # noqa: F401

    HAVE_TORCHVISION = True
except Exception:  # noqa: BLE001 - a broken torchvision install raises RuntimeError on import
    HAVE_TORCHVISION = False


def _reference_modules():
    names = ("image_processing_gemma4_unified", "video_processing_gemma4_unified")
    if HAVE_TORCHVISION:
        return [importlib.import_module(f"transformers.models.gemma4_unified.{n}") for n in names]
    import transformers.utils as hf_utils
    import transformers.utils.import_utils as hf_import_utils

    # Tell transformers torchvision is absent, and satisfy the processors' own import line with a
    # stand-in; none of the functions the oracle calls touch it.
    stub_names = (
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.v2",
        "torchvision.transforms.v2.functional",
    )
    stubs = {name: types.ModuleType(name) for name in stub_names}
    stubs["torchvision.transforms.v2"].functional = stubs["torchvision.transforms.v2.functional"]
    stubs["torchvision.transforms.v2.functional"].InterpolationMode = object  # only read in annotations
    saved = (hf_utils.is_torchvision_available, hf_import_utils.is_torchvision_available)
    hf_utils.is_torchvision_available = hf_import_utils.is_torchvision_available = lambda: False
    sys.modules.update(stubs)
    try:
        return [importlib.import_module(f"transformers.models.gemma4_unified.{n}") for n in names]
    finally:
        for name in stub_names:
            sys.modules.pop(name, None)
        hf_utils.is_torchvision_available, hf_import_utils.is_torchvision_available = saved


REF_IMAGE, REF_VIDEO = _reference_modules()
VISION = VisionConfig()
SIZES = [
    (1, 1),
    (7, 500),
    (500, 7),
    (33, 47),
    (48, 48),
    (67, 101),
    (480, 640),
    (720, 1280),
    (1080, 1920),
    (1001, 333),
    (96, 4000),
]


def _resize_like_torchvision_cpu(chw: torch.Tensor, size: list[int]) -> torch.Tensor:
    if HAVE_TORCHVISION:
        from torchvision.transforms.v2 import functional as tvF

        return tvF.resize(chw, size, interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)
    return F.interpolate(chw[None], size=size, mode="bicubic", align_corners=False, antialias=True)[0]


def _reference_image(picture: np.ndarray, budget: int, video: bool):
    ref = REF_VIDEO if video else REF_IMAGE
    chw = torch.from_numpy(picture).permute(2, 0, 1).contiguous()
    k, p = VISION.pooling_kernel_size, VISION.patch_size
    h, w = ref.get_aspect_ratio_preserving_size(chw.shape[1], chw.shape[2], p, budget * k * k, k)
    if (h, w) != tuple(chw.shape[1:]):
        chw = _resize_like_torchvision_cpu(chw, [h, w])
    if video:
        scaled = chw[None].float().sub(0.0).div(255.0)  # the fused normalise of the video processor
        patches = ref.convert_video_to_patches(scaled, p)
    else:
        scaled = chw * (1 / 255)
        patches = ref.convert_image_to_patches(scaled, p)[None]
    grid = torch.stack(torch.meshgrid(torch.arange(w // p), torch.arange(h // p), indexing="xy"), dim=-1)
    positions = grid.reshape(1, -1, 2)
    merged, merged_pos = ref.patches_merge(patches, positions, patches.shape[1] // (k * k))
    return merged[0], merged_pos[0], (h, w)


@pytest.mark.parametrize("video", [False, True], ids=["image", "video"])
@pytest.mark.parametrize("budget", [70, 280, 1120])
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_patches_match_reference(size, budget, video):
    rng = np.random.default_rng(size[0] * 7919 + size[1])
    picture = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    try:
        want_pix, want_pos, want_size = _reference_image(picture, budget, video)
    except ValueError:
        with pytest.raises(InputError):
            image_to_patches(picture, VISION, budget, video=video)
        return
    got = image_to_patches(picture, VISION, budget, video=video)
    assert got.size == want_size
    assert got.num_tokens <= budget
    assert torch.equal(got.positions, want_pos)
    assert torch.equal(got.pixels, want_pix)  # bit for bit


def test_fit_to_budget_matches_reference_sizes_exhaustively():
    k, p = VISION.pooling_kernel_size, VISION.patch_size
    for h in range(1, 400, 13):
        for w in range(1, 900, 37):
            try:
                want = REF_IMAGE.get_aspect_ratio_preserving_size(h, w, p, 280 * k * k, k)
            except ValueError:
                continue
            assert fit_to_budget(h, w, VISION, 280) == want


def test_bad_images_are_input_errors():
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((5, 5), np.uint8), np.zeros((5, 5, 3), np.float32)):
        with pytest.raises(InputError):
            image_to_patches(bad, VISION)
    with pytest.raises(InputError, match="max_soft_tokens"):
        image_to_patches(np.zeros((48, 48, 3), np.uint8), VISION, 100)


def test_timestamps_like_reference_processor():
    from transformers.models.gemma4_unified.processing_gemma4_unified import Gemma4UnifiedProcessor

    class Meta:
        fps = 1.0
        timestamps = [0.0, 1.5, 59.99, 61.0, 3599.5, 3600.0, 7325.2]

    fake = types.SimpleNamespace(boi_token="<boi>", eoi_token="<eoi>", video_token="<v>")
    text = Gemma4UnifiedProcessor.replace_video_token(
        fake, {"num_soft_tokens_per_video": [1], "video_metadata": [Meta()]}, 0
    )
    want = re.findall(r"(\d+:\d\d) <boi>", text)
    assert len(want) == len(Meta.timestamps)
    assert [mmss(t) for t in Meta.timestamps] == want
