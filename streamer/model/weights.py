"""Load a checkpoint directory: ``config.json`` + ``model.safetensors`` (or a sharded index).

Tensors are read one at a time from memory-mapped safetensors files straight into a model built
on the ``meta`` device, so loading never holds two copies of the weights. Every mismatch
(missing, unexpected or wrong-shaped tensor, absent shard, truncated file) is gathered into one
:class:`~streamer.errors.CheckpointError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from streamer import jsonio
from streamer.errors import CheckpointError, InputError
from streamer.model.attention import RotaryEmbedding
from streamer.model.config import ModelConfig, load_config
from streamer.model.gemma4_unified import Gemma4Unified

__all__ = ["DTYPES", "LoadedModel", "load_model", "resolve_device", "resolve_dtype", "weight_files"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_SHOW = 12  # names listed per kind of mismatch before "... and N more"


@dataclass
class LoadedModel:
    """A model ready to run, with where it came from."""

    model: Gemma4Unified
    config: ModelConfig
    path: Path  # the checkpoint directory
    dtype: torch.dtype  # dtype of the floating-point weights
    device: torch.device


def resolve_dtype(name: str | None, config: ModelConfig) -> torch.dtype:
    """``"auto"``/None → the checkpoint's own dtype (fp32 if unknown); else one of :data:`DTYPES`."""
    if name in (None, "auto"):
        name = config.torch_dtype if config.torch_dtype in DTYPES else "float32"
    if name not in DTYPES:
        raise CheckpointError(f"dtype {name!r} is not supported (choose from auto, {', '.join(DTYPES)})")
    return DTYPES[name]


def resolve_device(name: str | torch.device) -> torch.device:
    """A device this build of torch can use now, else one InputError saying why (before any loading)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device {name!r}: this torch build has no usable CUDA (torch {torch.__version__})"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(
                f"device {name!r}: there are {count} CUDA device(s) (cuda:0 to cuda:{count - 1})"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {name!r} is not supported (cpu, cuda, cuda:N or mps)")
    return device


def weight_files(model_dir: Path) -> dict[str, Path]:
    """Map each tensor name to the safetensors file holding it."""
    index = model_dir / "model.safetensors.index.json"
    single = model_dir / "model.safetensors"
    if index.is_file():
        try:
            weight_map = jsonio.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index} is not a valid safetensors index: {exc}") from exc
        files = {name: model_dir / shard for name, shard in weight_map.items()}
        missing = sorted({str(p.name) for p in files.values() if not p.is_file()})
        if missing:
            raise CheckpointError(f"{model_dir}: missing shard file(s): {', '.join(missing)}")
        return files
    if single.is_file():
        names = _safetensors_keys(single)
        return {name: single for name in names}
    raise CheckpointError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")


def _safetensors_keys(path: Path) -> list[str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({exc})") from exc


def _summarise(kind: str, names: list[str]) -> str:
    shown = ", ".join(names[:_SHOW])
    more = f" ... and {len(names) - _SHOW} more" if len(names) > _SHOW else ""
    return f"{kind} ({len(names)}): {shown}{more}"


def _check_names(model: Gemma4Unified, files: dict[str, Path], config: ModelConfig) -> dict[str, torch.Size]:
    expected = {name: t.shape for name, t in model.state_dict().items()}
    available = dict(files)
    if config.tie_word_embeddings:
        available.pop("lm_head.weight", None)  # some writers keep the tied head; it is ignored
    missing = sorted(set(expected) - set(available))
    unexpected = sorted(set(available) - set(expected))
    problems = []
    if missing:
        problems.append(_summarise("missing tensors", missing))
    if unexpected:
        problems.append(_summarise("unexpected tensors", unexpected))
    if problems:
        raise CheckpointError("checkpoint does not match its config.json: " + "; ".join(problems))
    return expected


def _iter_tensors(files: dict[str, Path], names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    by_file: dict[Path, list[str]] = {}
    for name in names:
        by_file.setdefault(files[name], []).append(name)
    with ExitStack() as stack:
        for path, file_names in by_file.items():
            try:
                handle = stack.enter_context(safe_open(str(path), framework="pt"))
                for name in file_names:
                    yield name, handle.get_tensor(name)
            except (SafetensorError, OSError, RuntimeError) as exc:
                raise CheckpointError(
                    f"{path.name}: cannot read tensors (truncated or corrupt file?): {exc}"
                ) from exc


def load_model(
    model_dir: str | Path,
    *,
    dtype: str | None = "auto",
    device: str | torch.device = "cpu",
    trainable: bool = False,
) -> LoadedModel:
    """Build the model of ``model_dir`` and load its weights onto ``device`` in ``dtype``.

    The model is frozen for inference (``eval()``, no gradients) unless ``trainable``: then every
    parameter requires grad and owns its memory (nothing is shared with the memory-mapped file).
    """
    device = resolve_device(device)  # a bad device fails before anything is read
    path = Path(model_dir)
    config = load_config(path)
    target = resolve_dtype(dtype, config)
    files = weight_files(path)
    with torch.device("meta"):
        model = Gemma4Unified(config)
    expected = _check_names(model, files, config)
    state: dict[str, torch.Tensor] = {}
    wrong: list[str] = []
    for name, tensor in _iter_tensors(files, sorted(expected)):
        if tensor.shape != expected[name]:
            wrong.append(f"{name} {tuple(tensor.shape)} != {tuple(expected[name])}")
            continue
        want = target if tensor.is_floating_point() else tensor.dtype
        state[name] = tensor.to(device=device, dtype=want, copy=trainable)
    if wrong:
        raise CheckpointError(
            "checkpoint does not match its config.json: " + _summarise("wrong-shaped tensors", wrong)
        )
    model.load_state_dict(state, strict=True, assign=True)
    _materialize_rope(model, config, device)
    if trainable:
        model.train().requires_grad_(True)
    else:
        model.eval().requires_grad_(False)
    return LoadedModel(model=model, config=config, path=path, dtype=target, device=device)


def _materialize_rope(model: Gemma4Unified, config: ModelConfig, device: torch.device) -> None:
    """Non-persistent RoPE tables are not in the checkpoint: rebuild them on the target device."""
    ropes = model.model.language_model.rope
    for layer_type in list(ropes.keys()):
        ropes[layer_type] = RotaryEmbedding(config.text, layer_type).to(device)
