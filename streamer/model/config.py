"""Checkpoint configuration for Gemma 4 Unified (``model_type: gemma4_unified``).

Read from a checkpoint's ``config.json`` with :func:`load_config`. Every field is an explicit
decision: honoured, accepted as inert metadata (HF bookkeeping such as ``transformers_version``),
or rejected with a :class:`~streamer.errors.ConfigError` naming the field. Defaults are the
reference's defaults; nothing about the 12B is hard-coded here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.errors import ConfigError
from streamer.model.config_fields import Range, check_fields, check_value

__all__ = [
    "AudioConfig",
    "LayerSpec",
    "ModelConfig",
    "TextConfig",
    "VisionConfig",
    "load_config",
    "parse_config",
]

# Generic PreTrainedConfig bookkeeping: carries no math, accepted anywhere.
_METADATA_FIELDS = frozenset(
    {
        "_name_or_path",
        "architectures",
        "chunk_size_feed_forward",
        "dtype",
        "torch_dtype",
        "id2label",
        "label2id",
        "is_encoder_decoder",
        "model_type",
        "output_attentions",
        "output_hidden_states",
        "problem_type",
        "return_dict",
        "transformers_version",
        "initializer_range",
        "use_cache",
        "attention_dropout",  # training only
        "tie_encoder_decoder",
        "_attn_implementation_autoset",
    }
)

_SUPPORTED_ACTIVATIONS = ("gelu_pytorch_tanh", "gelu", "gelu_new", "silu", "relu")
_SUPPORTED_ROPE_TYPES = ("default", "proportional", "linear")
_LAYER_TYPES = ("sliding_attention", "full_attention")
# Fields a per-layer override may change; everything else is rejected by name.
_PER_LAYER_FIELDS = frozenset({"head_dim", "num_key_value_heads", "skip"})


@dataclass(frozen=True)
class LayerSpec:
    """Resolved shape of one decoder layer."""

    layer_type: str  # "sliding_attention" | "full_attention"
    head_dim: int  # per-head width of q/k/v in this layer
    num_kv_heads: int  # key/value heads in this layer
    k_eq_v: bool  # values are the (unnormed) keys: no v_proj in this layer
    kv_source: int  # index of the layer whose K/V this layer attends to (itself unless shared)
    stores_kv: bool  # another layer reuses this layer's K/V
    intermediate_size: int  # MLP width of this layer


@dataclass
class TextConfig:
    """The decoder. Defaults are the reference ``Gemma4UnifiedTextConfig`` defaults."""

    vocab_size: int = 262_144
    hidden_size: int = 2304
    intermediate_size: int = 9216
    num_hidden_layers: int = 30
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    head_dim: int = 256
    hidden_activation: str = "gelu_pytorch_tanh"
    max_position_embeddings: int = 262_144
    rms_norm_eps: float = 1e-6
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    bos_token_id: int | None = 2
    tie_word_embeddings: bool = True
    rope_parameters: dict[str, dict[str, Any]] | None = None
    attention_bias: bool = False
    sliding_window: int = 1024  # as written in config.json (see `effective_sliding_window`)
    layer_types: list[str] | None = None
    final_logit_softcapping: float | None = None
    use_bidirectional_attention: str | None = "vision"  # None | "vision" | "all"
    attention_k_eq_v: bool = False
    num_kv_shared_layers: int = 0
    use_double_wide_mlp: bool = False
    per_layer_config: dict[int, dict[str, Any]] | None = None
    global_head_dim: int = 512  # only used when per_layer_config is absent
    num_global_key_value_heads: int | None = None  # only used when per_layer_config is absent
    is_causal: bool | None = None  # written by the reference for "all"; must agree with it

    # Derived in __post_init__.
    layers: list[LayerSpec] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.use_bidirectional_attention not in (None, "vision", "all"):
            raise ConfigError(
                "text_config.use_bidirectional_attention must be null, 'vision' or 'all', "
                f"got {self.use_bidirectional_attention!r}"
            )
        if self.is_causal is not None and self.is_causal != (self.use_bidirectional_attention != "all"):
            raise ConfigError(
                f"text_config.is_causal={self.is_causal} contradicts "
                f"use_bidirectional_attention={self.use_bidirectional_attention!r}"
            )
        if self.hidden_activation not in _SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"text_config.hidden_activation {self.hidden_activation!r} is not supported "
                f"(supported: {', '.join(_SUPPORTED_ACTIVATIONS)})"
            )
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"text_config.{name} must be positive, got {getattr(self, name)}")
        if self.layer_types is None:
            self.layer_types = [
                "sliding_attention" if (i + 1) % 6 else "full_attention"
                for i in range(self.num_hidden_layers)
            ]
        if len(self.layer_types) != self.num_hidden_layers:
            raise ConfigError(
                f"text_config.layer_types has {len(self.layer_types)} entries for "
                f"{self.num_hidden_layers} layers"
            )
        bad = sorted(set(self.layer_types) - set(_LAYER_TYPES))
        if bad:
            raise ConfigError(f"text_config.layer_types: unsupported layer type(s) {bad}")
        # The reference forces the last layer to full attention.
        self.layer_types = list(self.layer_types)
        self.layer_types[-1] = "full_attention"
        if self.rope_parameters is None:
            self.rope_parameters = {
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                "full_attention": {
                    "rope_type": "proportional",
                    "partial_rotary_factor": 0.25,
                    "rope_theta": 1e6,
                },
            }
        self._check_rope()
        if self.per_layer_config is None:
            overrides: dict[str, Any] = {"head_dim": self.global_head_dim}
            if self.attention_k_eq_v and self.num_global_key_value_heads is not None:
                overrides["num_key_value_heads"] = self.num_global_key_value_heads
            self.per_layer_config = {
                i: dict(overrides) for i, t in enumerate(self.layer_types) if t == "full_attention"
            }
        else:
            self.per_layer_config = {int(k): dict(v) for k, v in self.per_layer_config.items()}
        self.layers = self._resolve_layers()

    def _check_rope(self) -> None:
        assert self.rope_parameters is not None and self.layer_types is not None
        for layer_type in set(self.layer_types):
            params = self.rope_parameters.get(layer_type)
            if not isinstance(params, dict):
                raise ConfigError(f"text_config.rope_parameters has no entry for {layer_type!r}")
            rope_type = params.get("rope_type", "default")
            if rope_type not in _SUPPORTED_ROPE_TYPES:
                raise ConfigError(
                    f"text_config.rope_parameters.{layer_type}.rope_type {rope_type!r} is not supported "
                    f"(supported: {', '.join(_SUPPORTED_ROPE_TYPES)})"
                )
            unknown = set(params) - {"rope_type", "rope_theta", "partial_rotary_factor", "factor"}
            if unknown:
                raise ConfigError(
                    f"text_config.rope_parameters.{layer_type}: unsupported field(s) {sorted(unknown)}"
                )
            if "rope_theta" not in params:
                raise ConfigError(f"text_config.rope_parameters.{layer_type}.rope_theta is missing")
            where = f"text_config.rope_parameters.{layer_type}"
            check_value(f"{where}.rope_type", rope_type, str)
            check_value(f"{where}.rope_theta", params["rope_theta"], float, Range(0, lo_open=True))
            for name, bounds in (
                ("partial_rotary_factor", Range(0, 1, lo_open=True)),
                ("factor", Range(0, lo_open=True)),
            ):
                if name in params:
                    check_value(f"{where}.{name}", params[name], float, bounds)
            if rope_type == "default" and params.get("partial_rotary_factor", 1.0) != 1.0:
                raise ConfigError(
                    f"text_config.rope_parameters.{layer_type}: partial_rotary_factor needs rope_type 'proportional'"
                )

    def _resolve_layers(self) -> list[LayerSpec]:
        assert self.layer_types is not None and self.per_layer_config is not None
        n = self.num_hidden_layers
        for idx, overrides in self.per_layer_config.items():
            if not 0 <= idx < n:
                raise ConfigError(f"text_config.per_layer_config: layer index {idx} is outside [0, {n})")
            unknown = set(overrides) - _PER_LAYER_FIELDS
            if unknown:
                raise ConfigError(
                    f"text_config.per_layer_config[{idx}]: unsupported per-layer field(s) {sorted(unknown)}"
                )
            where = f"text_config.per_layer_config[{idx}]"
            check_value(f"{where}.skip", overrides.get("skip", False), bool)
            if overrides.get("skip"):
                raise ConfigError(f"{where}.skip is not supported")
            for name in ("head_dim", "num_key_value_heads"):
                if name in overrides:
                    check_value(f"{where}.{name}", overrides[name], int, Range(1))
        if not 0 <= self.num_kv_shared_layers <= n:
            raise ConfigError(f"text_config.num_kv_shared_layers must be in [0, {n}]")
        modes = self._kv_sharing_modes()
        specs: list[LayerSpec] = []
        last_producer: dict[str, int] = {}
        for i, layer_type in enumerate(self.layer_types):
            overrides = self.per_layer_config.get(i, {})
            head_dim = int(overrides.get("head_dim", self.head_dim))
            kv_heads = int(overrides.get("num_key_value_heads", self.num_key_value_heads))
            if head_dim <= 0 or head_dim % 2:
                raise ConfigError(f"layer {i}: head_dim must be a positive even number, got {head_dim}")
            if kv_heads <= 0 or self.num_attention_heads % kv_heads:
                raise ConfigError(
                    f"layer {i}: num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                    f"num_key_value_heads ({kv_heads})"
                )
            reuse = modes[i] == "reuse"
            if not reuse:
                last_producer[layer_type] = i
            source = last_producer[layer_type] if reuse else i
            wide = self.use_double_wide_mlp and reuse
            specs.append(
                LayerSpec(
                    layer_type=layer_type,
                    head_dim=head_dim,
                    num_kv_heads=kv_heads,
                    k_eq_v=self.attention_k_eq_v and layer_type == "full_attention",
                    kv_source=source,
                    stores_kv=modes[i] == "store",
                    intermediate_size=self.intermediate_size * (2 if wide else 1),
                )
            )
        for i, spec in enumerate(specs):
            src = specs[spec.kv_source]
            if spec.kv_source != i and (src.head_dim, src.num_kv_heads) != (spec.head_dim, spec.num_kv_heads):
                raise ConfigError(
                    f"layer {i} shares K/V with layer {spec.kv_source} but their head shapes differ"
                )
        # RoPE tables are per layer type: every layer of a type must agree on head_dim.
        for layer_type in set(self.layer_types):
            dims = {s.head_dim for s in specs if s.layer_type == layer_type}
            if len(dims) > 1:
                raise ConfigError(
                    f"layers of type {layer_type!r} have different head_dim values {sorted(dims)}"
                )
        return specs

    def _kv_sharing_modes(self) -> list[str | None]:
        """Per layer: None (own K/V), "store" (own K/V, reused later) or "reuse" — as the reference."""
        assert self.layer_types is not None
        n, shared = self.num_hidden_layers, self.num_kv_shared_layers
        if shared == 0:
            return [None] * n
        if shared == n:
            raise ConfigError(
                "text_config.num_kv_shared_layers equals num_hidden_layers: no layer produces K/V"
            )
        first_shared = n - shared
        modes: list[str | None] = [None if i < first_shared else "reuse" for i in range(n)]
        producers = self.layer_types[:first_shared]
        if set(producers) != set(self.layer_types):
            raise ConfigError(
                "text_config.num_kv_shared_layers: some shared layer type has no earlier layer producing its K/V"
            )
        for layer_type in set(self.layer_types):
            last = max(i for i, t in enumerate(producers) if t == layer_type)
            modes[last] = "store"
        return modes

    @property
    def effective_sliding_window(self) -> int:
        """Window as the attention mask uses it (the reference halves it for 'all' bidirectional)."""
        if self.use_bidirectional_attention == "all":
            return self.sliding_window // 2 + 1
        return self.sliding_window

    @property
    def eos_token_ids(self) -> list[int]:
        if self.eos_token_id is None:
            return []
        return [self.eos_token_id] if isinstance(self.eos_token_id, int) else list(self.eos_token_id)

    def rope_dims(self, layer_type: str) -> tuple[float, int, float, int]:
        """(theta, head_dim, factor, rotated pairs) of the RoPE of ``layer_type``."""
        assert self.rope_parameters is not None
        params = self.rope_parameters[layer_type]
        head_dim = next(s.head_dim for s in self.layers if s.layer_type == layer_type)
        partial = (
            float(params.get("partial_rotary_factor", 1.0))
            if params.get("rope_type") == "proportional"
            else 1.0
        )
        factor = (
            float(params.get("factor", 1.0)) if params.get("rope_type") in ("proportional", "linear") else 1.0
        )
        return float(params["rope_theta"]), head_dim, factor, int(partial * head_dim // 2)


@dataclass
class VisionConfig:
    """Encoder-free patch embedder (reference ``Gemma4UnifiedVisionConfig``)."""

    patch_size: int = 16
    pooling_kernel_size: int = 3
    mm_embed_dim: int = 3840
    mm_posemb_size: int = 1120
    rms_norm_eps: float = 1e-6
    output_proj_dims: int = 3840

    @property
    def model_patch_size(self) -> int:
        """Side of one merged patch in pixels (48 for the real model)."""
        return self.patch_size * self.pooling_kernel_size

    @property
    def patch_dim(self) -> int:
        return self.model_patch_size**2 * 3


@dataclass
class AudioConfig:
    """Raw-waveform audio embedder (reference ``Gemma4UnifiedAudioConfig``)."""

    audio_embed_dim: int = 640  # samples per audio soft token (640 = 40 ms at 16 kHz)
    rms_norm_eps: float = 1e-6

    @property
    def samples_per_token(self) -> int:
        return self.audio_embed_dim


@dataclass
class ModelConfig:
    """The whole checkpoint: decoder, optional embedders and the special-token ids."""

    text: TextConfig
    vision: VisionConfig | None
    audio: AudioConfig | None
    boi_token_id: int | None = 255_999
    eoi_token_id: int | None = 258_882
    image_token_id: int | None = 258_880
    video_token_id: int | None = 258_884
    boa_token_id: int | None = 256_000
    eoa_token_id: int | None = 258_883
    audio_token_id: int | None = 258_881
    tie_word_embeddings: bool = True
    torch_dtype: str | None = None  # dtype the checkpoint was saved in, e.g. "bfloat16"

    def __post_init__(self) -> None:
        if self.vision is not None and self.vision.output_proj_dims != self.vision.mm_embed_dim:
            # The reference feeds the mm_embed_dim-wide pos_norm output into a projection sized
            # output_proj_dims: they must agree for the checkpoint to be loadable.
            raise ConfigError(
                f"vision_config.output_proj_dims ({self.vision.output_proj_dims}) must equal "
                f"vision_config.mm_embed_dim ({self.vision.mm_embed_dim})"
            )
        for name in ("image_token_id", "video_token_id", "audio_token_id", "boi_token_id", "eoi_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.text.vocab_size:
                raise ConfigError(f"{name} {value} is outside the vocabulary (size {self.text.vocab_size})")


# Ranges of numeric fields (types come from the dataclass annotations); see config_fields.
_POSITIVE, _NON_NEGATIVE, _ABOVE_ZERO = Range(1), Range(0), Range(0, lo_open=True)
_TEXT_RANGES = {
    **dict.fromkeys(
        ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
         "num_key_value_heads", "head_dim", "max_position_embeddings", "sliding_window", "global_head_dim",
         "num_global_key_value_heads"), _POSITIVE,
    ),
    **dict.fromkeys(("pad_token_id", "eos_token_id", "bos_token_id", "num_kv_shared_layers"), _NON_NEGATIVE),
    "rms_norm_eps": Range(0, 1, lo_open=True),
    "final_logit_softcapping": _ABOVE_ZERO,
}  # fmt: skip
_VISION_RANGES = {
    **dict.fromkeys(("patch_size", "pooling_kernel_size", "mm_embed_dim", "mm_posemb_size", "output_proj_dims"), _POSITIVE),
    "rms_norm_eps": Range(0, 1, lo_open=True),
}  # fmt: skip
_AUDIO_RANGES = {"audio_embed_dim": _POSITIVE, "rms_norm_eps": Range(0, 1, lo_open=True)}
_TOP_TYPES: dict[str, Any] = {  # top-level fields outside the dataclasses
    **dict.fromkeys(
        ("boi_token_id", "eoi_token_id", "image_token_id", "video_token_id", "boa_token_id", "eoa_token_index",
         "eoa_token_id", "audio_token_id", "pad_token_id", "bos_token_id"), int | None,
    ),
    "eos_token_id": int | list[int] | None,
    "tie_word_embeddings": bool,
    "dtype": str | None,
    "torch_dtype": str | None,
    "text_config": dict[str, Any] | None,
    "vision_config": dict[str, Any] | None,
    "audio_config": dict[str, Any] | None,
}  # fmt: skip


def _check_types(data: dict[str, Any]) -> None:
    """Every field's JSON type and range, before anything is built (one ConfigError naming the field)."""
    for name, kind in _TOP_TYPES.items():
        if name in data:
            check_value(name, data[name], kind, _NON_NEGATIVE if name.endswith(("_id", "_index")) else None)
    check_fields("text_config", data.get("text_config") or {}, TextConfig, _TEXT_RANGES)
    check_fields("vision_config", data.get("vision_config") or {}, VisionConfig, _VISION_RANGES)
    check_fields("audio_config", data.get("audio_config") or {}, AudioConfig, _AUDIO_RANGES)


def _take(section: str, data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Split ``data`` into honoured fields; reject unknown ones by name."""
    unknown = sorted(k for k in data if k not in known and k not in _METADATA_FIELDS)
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {', '.join(unknown)}")
    return {k: v for k, v in data.items() if k in known}


def _dataclass_fields(cls: type) -> set[str]:
    return {f.name for f in cls.__dataclass_fields__.values() if f.init}  # type: ignore[attr-defined]


def parse_config(data: dict[str, Any]) -> ModelConfig:
    """Build a :class:`ModelConfig` from a parsed ``config.json`` dict."""
    model_type = data.get("model_type")
    if model_type != "gemma4_unified":
        raise ConfigError(f"model_type is {model_type!r}; streamer runs 'gemma4_unified' checkpoints only")
    top_known = {
        "text_config",
        "vision_config",
        "audio_config",
        "boi_token_id",
        "eoi_token_id",
        "image_token_id",
        "video_token_id",
        "boa_token_id",
        "eoa_token_index",
        "eoa_token_id",
        "audio_token_id",
        "tie_word_embeddings",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
    }
    top = _take("config", data, top_known)
    _check_types(data)
    text_data = dict(data.get("text_config") or {})
    text_fields = _dataclass_fields(TextConfig) - {"layers"}
    try:
        text = TextConfig(**_take("text_config", text_data, text_fields))
        vision = (
            VisionConfig(**_take("vision_config", data["vision_config"], _dataclass_fields(VisionConfig)))
            if data.get("vision_config") is not None
            else None
        )
        audio = (
            AudioConfig(**_take("audio_config", data["audio_config"], _dataclass_fields(AudioConfig)))
            if data.get("audio_config") is not None
            else None
        )
    except TypeError as exc:  # a field with a wrong type
        raise ConfigError(f"config.json: {exc}") from exc
    if vision is not None and vision.output_proj_dims <= 0:
        raise ConfigError("vision_config.output_proj_dims must be positive")
    if audio is not None and audio.audio_embed_dim <= 0:
        raise ConfigError("audio_config.audio_embed_dim must be positive")
    tokens = {k: top[k] for k in top if k.endswith("_token_id") and k in ModelConfig.__dataclass_fields__}
    if "eoa_token_index" in top:
        tokens["eoa_token_id"] = top["eoa_token_index"]
    config = ModelConfig(
        text=text,
        vision=vision,
        audio=audio,
        tie_word_embeddings=bool(top.get("tie_word_embeddings", text.tie_word_embeddings)),
        torch_dtype=data.get("dtype") or data.get("torch_dtype"),
        **tokens,
    )
    if not math.isfinite(text.rms_norm_eps) or text.rms_norm_eps <= 0:
        raise ConfigError("text_config.rms_norm_eps must be a positive number")
    return config


def load_config(model_dir: str | Path) -> ModelConfig:
    """Read ``model_dir/config.json``; raise :class:`ConfigError` with a one-line reason."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{path} not found (is --model a checkpoint directory?)")
    try:
        data = jsonio.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return parse_config(data)
