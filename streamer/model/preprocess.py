"""Pixels → merged patches, exactly as the reference image and video processors build them.

An image is resized (aspect ratio kept, bicubic with antialiasing, on uint8 like torchvision on
CPU) to the largest size whose 48-px grid fits a soft-token budget, scaled to [0, 1] and cut into
48×48 patches in raster order; each patch is flattened HWC (48·48·3 values) and carries its
(x, y) grid position. One patch is one soft token.

The reference scales images by ``* (1/255)`` and video frames by ``/ 255`` (its fused
normalise); both are kept so the tensors match bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from streamer.errors import InputError
from streamer.model.config import VisionConfig

__all__ = [
    "SOFT_TOKEN_BUDGETS",
    "IMAGE_SOFT_TOKENS",
    "VIDEO_SOFT_TOKENS",
    "Patches",
    "fit_to_budget",
    "image_to_patches",
    "mmss",
]

SOFT_TOKEN_BUDGETS = (70, 140, 280, 560, 1120)  # budgets the reference processors accept
IMAGE_SOFT_TOKENS = 280  # reference image processor default
VIDEO_SOFT_TOKENS = 70  # reference video processor default (per frame)


@dataclass
class Patches:
    """One image or frame ready for :meth:`Gemma4Unified.embed_image`."""

    pixels: torch.Tensor  # float32 [N, patch_px*patch_px*3], values in [0, 1]
    positions: torch.Tensor  # long [N, 2], (x, y) on the patch grid
    size: tuple[int, int]  # (height, width) after resizing, in pixels

    @property
    def num_tokens(self) -> int:
        return int(self.pixels.shape[0])


def fit_to_budget(height: int, width: int, vision: VisionConfig, max_soft_tokens: int) -> tuple[int, int]:
    """Largest (height, width), multiples of the merged patch side, within the token budget."""
    patch, k = vision.patch_size, vision.pooling_kernel_size
    max_patches = max_soft_tokens * k * k
    target_px = max_patches * patch * patch
    factor = math.sqrt(target_px / (height * width))
    side = patch * k
    target_h = int(math.floor(factor * height / side)) * side
    target_w = int(math.floor(factor * width / side)) * side
    if target_h == 0 and target_w == 0:
        raise InputError(f"image {width}x{height} cannot be resized to a non-empty patch grid")
    max_side = (max_patches // (k * k)) * side
    if target_h == 0:
        target_h, target_w = side, min(int(math.floor(width / height)) * side, max_side)
    elif target_w == 0:
        target_w, target_h = side, min(int(math.floor(height / width)) * side, max_side)
    if target_h * target_w > target_px:
        raise InputError(f"image {width}x{height} does not fit {max_soft_tokens} soft tokens")
    return target_h, target_w


def image_to_patches(
    image: np.ndarray | torch.Tensor,
    vision: VisionConfig,
    max_soft_tokens: int = IMAGE_SOFT_TOKENS,
    *,
    video: bool = False,
) -> Patches:
    """Merged patches of an RGB uint8 image ``[H, W, 3]`` (``video=True``: frame scaling)."""
    if max_soft_tokens not in SOFT_TOKEN_BUDGETS:
        raise InputError(f"max_soft_tokens must be one of {SOFT_TOKEN_BUDGETS}, got {max_soft_tokens}")
    pixels = torch.as_tensor(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
    if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError(
            f"an image must be uint8 [height, width, 3], got {pixels.dtype} {list(pixels.shape)}"
        )
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    if height == 0 or width == 0:
        raise InputError("an image must not be empty")
    chw = pixels.permute(2, 0, 1)[None]  # [1, 3, H, W]
    target_h, target_w = fit_to_budget(height, width, vision, max_soft_tokens)
    if (target_h, target_w) != (height, width):
        chw = F.interpolate(
            chw.contiguous(), size=[target_h, target_w], mode="bicubic", align_corners=False, antialias=True
        )
    scaled = chw[0].float() / 255 if video else chw[0] * (1 / 255)  # [3, h, w]
    side = vision.model_patch_size
    grid_h, grid_w = target_h // side, target_w // side
    patches = (
        scaled.reshape(3, grid_h, side, grid_w, side).permute(1, 3, 2, 4, 0).reshape(grid_h * grid_w, -1)
    )
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    positions = torch.stack([cols.flatten(), rows.flatten()], dim=-1)
    return Patches(pixels=patches.contiguous(), positions=positions, size=(target_h, target_w))


def mmss(seconds: float) -> str:
    """The reference's frame timestamp text: ``mm:ss`` (minutes keep counting past 59)."""
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"
