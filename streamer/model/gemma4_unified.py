"""Gemma 4 Unified: the decoder and its encoder-free patch and waveform embedders.

The network maps (input embeddings, :class:`TokenMeta`, caches) → hidden states → logits and
nothing more; sampling, decode loops and batching live in :mod:`streamer.engine`. Module names
mirror the tensor names transformers writes (``model.language_model.layers.0.self_attn.q_proj``),
so loading is a key-for-key copy.

Math follows the reference ``transformers/models/gemma4_unified/modeling_gemma4_unified.py``:
scaled word embeddings; RMSNorm with a plain (not 1+w) scale; q/k/v norms and attention scale
1.0; per-layer head shapes; K=V on full layers when ``attention_k_eq_v``; default and
proportional RoPE; bidirectional attention inside image/frame blocks; KV sharing; pre/post
norms; a per-layer scalar; gelu-tanh MLP; final logit soft-capping; tied head.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from streamer.model.attention import KVView, RotaryEmbedding, TokenMeta, apply_rotary, build_mask
from streamer.model.cache import LayerCache
from streamer.model.config import LayerSpec, ModelConfig, TextConfig, VisionConfig

__all__ = ["Gemma4Unified", "RMSNorm"]

_ACTIVATIONS = {
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "silu": F.silu,
    "relu": F.relu,
}


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32; the scale multiplies directly (Gemma 4), or is absent."""

    def __init__(self, dim: int, eps: float, with_scale: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if with_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.pow(h.pow(2).mean(-1, keepdim=True) + self.eps, -0.5)
        if self.weight is not None:
            h = h * self.weight.float()
        return h.type_as(x)


class Attention(nn.Module):
    def __init__(self, config: TextConfig, spec: LayerSpec):
        super().__init__()
        hidden, heads, hd = config.hidden_size, config.num_attention_heads, spec.head_dim
        bias = config.attention_bias
        self.spec = spec
        self.num_heads = heads
        self.q_proj = nn.Linear(hidden, heads * hd, bias=bias)
        self.q_norm = RMSNorm(hd, config.rms_norm_eps)
        self.o_proj = nn.Linear(heads * hd, hidden, bias=bias)

    def add_kv(self, config: TextConfig) -> None:
        """Give this layer its own K/V projections (layers that reuse another's K/V have none)."""
        hidden, spec = config.hidden_size, self.spec
        width = spec.num_kv_heads * spec.head_dim
        self.k_proj = nn.Linear(hidden, width, bias=config.attention_bias)
        self.v_proj = None if spec.k_eq_v else nn.Linear(hidden, width, bias=config.attention_bias)
        self.k_norm = RMSNorm(spec.head_dim, config.rms_norm_eps)
        self.v_norm = RMSNorm(spec.head_dim, config.rms_norm_eps, with_scale=False)

    def project_kv(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """keys, values ``[B, Hkv, S, D]`` (keys rotated) for hidden states ``x [B, S, hidden]``."""
        b, s, _ = x.shape
        k = self.k_proj(x).view(b, s, -1, self.spec.head_dim)
        v = self.v_proj(x).view(b, s, -1, self.spec.head_dim) if self.v_proj is not None else k
        k = apply_rotary(self.k_norm(k), cos, sin, head_axis=2).transpose(1, 2)
        v = self.v_norm(v).transpose(1, 2)
        return k, v

    def project_q(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.num_heads, self.spec.head_dim)
        return apply_rotary(self.q_norm(q), cos, sin, head_axis=2).transpose(1, 2)  # q: [B, H, S, D]


def _attend(q: torch.Tensor, kv: KVView, mask: torch.Tensor | str | None) -> torch.Tensor:
    """SDPA with GQA and scale 1.0 (q/k norms already normalise). q: [B, H, S, D] → [B, S, H*D]."""
    causal = isinstance(mask, str)  # CAUSAL: let SDPA use its causal kernel, no mask tensor
    attn_mask = None if isinstance(mask, str) else mask
    out = F.scaled_dot_product_attention(
        q,
        kv.keys,
        kv.values,
        attn_mask=attn_mask,
        is_causal=causal,
        scale=1.0,
        enable_gqa=kv.keys.shape[1] != q.shape[1],
    )
    b, h, s, d = out.shape
    return out.transpose(1, 2).reshape(b, s, h * d)


class MLP(nn.Module):
    def __init__(self, config: TextConfig, spec: LayerSpec):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, spec.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, spec.intermediate_size, bias=False)
        self.down_proj = nn.Linear(spec.intermediate_size, config.hidden_size, bias=False)
        self.act = _ACTIVATIONS[config.hidden_activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    layer_scalar: torch.Tensor  # [1], a buffer loaded from the checkpoint

    def __init__(self, config: TextConfig, index: int):
        super().__init__()
        spec = config.layers[index]
        eps = config.rms_norm_eps
        self.spec = spec
        self.self_attn = Attention(config, spec)
        if spec.kv_source == index:
            self.self_attn.add_kv(config)
        self.mlp = MLP(config, spec)
        self.input_layernorm = RMSNorm(config.hidden_size, eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps)
        self.pre_feedforward_layernorm = RMSNorm(config.hidden_size, eps)
        self.post_feedforward_layernorm = RMSNorm(config.hidden_size, eps)
        self.register_buffer("layer_scalar", torch.ones(1))


class TextModel(nn.Module):
    """``model.language_model``: embeddings, decoder layers, final norm."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rope = nn.ModuleDict(
            {t: RotaryEmbedding(config, t) for t in sorted(set(config.layer_types or []))}
        )

    # nn.ModuleList / nn.ModuleDict hand out plain modules to a type checker; these say what they hold.
    def layer(self, index: int) -> DecoderLayer:
        """Decoder layer ``index``."""
        return cast(DecoderLayer, self.layers[index])

    def rotary(self, layer_type: str) -> RotaryEmbedding:
        """The RoPE tables of ``layer_type`` (``sliding_attention`` / ``full_attention``)."""
        return cast(RotaryEmbedding, self.rope[layer_type])


class VisionEmbedder(nn.Module):
    """``model.vision_embedder``: merged patches → LN → Dense → LN → + (x, y) pos-emb → LN."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        self.patch_ln1 = nn.LayerNorm(config.patch_dim)
        self.patch_dense = nn.Linear(config.patch_dim, config.mm_embed_dim)
        self.patch_ln2 = nn.LayerNorm(config.mm_embed_dim)
        self.pos_embedding = nn.Parameter(torch.zeros(config.mm_posemb_size, 2, config.mm_embed_dim))
        self.pos_norm = nn.LayerNorm(config.mm_embed_dim)

    def forward(self, patches: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """patches ``[N, patch_dim]`` in [0, 1], positions ``[N, 2]`` (x, y) → ``[N, mm_embed_dim]``."""
        h = self.patch_ln2(self.patch_dense(self.patch_ln1(patches.to(self.patch_dense.weight.dtype))))
        axes = torch.arange(2, device=positions.device)
        h = h + self.pos_embedding[positions.long(), axes].sum(-2)
        return self.pos_norm(h)


class MultimodalProjection(nn.Module):
    """``model.embed_vision`` / ``model.embed_audio``: RMSNorm (no scale) → Linear into the decoder."""

    def __init__(self, in_dim: int, hidden: int, eps: float):
        super().__init__()
        self.embedding_pre_projection_norm = RMSNorm(in_dim, eps, with_scale=False)
        self.embedding_projection = nn.Linear(in_dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.embedding_projection.weight.dtype)
        return self.embedding_projection(self.embedding_pre_projection_norm(x))


class _Inner(nn.Module):
    """The ``model.`` prefix of the checkpoint."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.language_model = TextModel(config.text)
        hidden = config.text.hidden_size
        if config.vision is not None:
            self.vision_embedder = VisionEmbedder(config.vision)
            self.embed_vision = MultimodalProjection(
                config.vision.output_proj_dims, hidden, config.vision.rms_norm_eps
            )
        if config.audio is not None:
            self.embed_audio = MultimodalProjection(
                config.audio.audio_embed_dim, hidden, config.audio.rms_norm_eps
            )


class Gemma4Unified(nn.Module):
    """The whole checkpoint. Call order: ``embed_*`` → :meth:`forward` → :meth:`logits`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model = _Inner(config)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.text.hidden_size, config.text.vocab_size, bias=False)

    # ---- embeddings -------------------------------------------------------------------------
    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Scaled word embeddings ``[..., hidden]``; the scale is rounded to the weight dtype as the reference."""
        weight = self.model.language_model.embed_tokens.weight
        scale = torch.tensor(self.config.text.hidden_size**0.5, dtype=weight.dtype, device=weight.device)
        return F.embedding(ids, weight) * scale

    def embed_image(self, patches: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Soft tokens ``[N, hidden]`` of one image/frame: merged patches ``[N, patch_dim]``, positions ``[N, 2]``."""
        if self.config.vision is None:
            raise ValueError("this checkpoint has no vision_config: it cannot take images")
        return self.model.embed_vision(self.model.vision_embedder(patches, positions))

    def embed_audio(self, frames: torch.Tensor) -> torch.Tensor:
        """Soft tokens ``[N, hidden]`` of raw waveform frames ``[N, samples_per_token]``."""
        if self.config.audio is None:
            raise ValueError("this checkpoint has no audio_config: it cannot take audio")
        return self.model.embed_audio(frames)

    # ---- decoder ----------------------------------------------------------------------------
    def forward(
        self,
        embeds: torch.Tensor,
        meta: TokenMeta,
        caches: list[list[LayerCache | None]] | None = None,
    ) -> torch.Tensor:
        """Final-norm hidden states ``[B, S, hidden]`` of input embeddings ``[B, S, hidden]``.

        Without ``caches`` the batch attends only within itself (a whole sequence). With
        ``caches`` (one per batch row, from :func:`streamer.model.cache.make_cache`), each row
        attends to its own cache plus the new tokens, which are written into it.
        """
        text = self.config.text
        lm = self.model.language_model
        dtype = embeds.dtype
        rope = {t: lm.rotary(t)(meta.positions, dtype) for t in lm.rope}
        window = text.effective_sliding_window
        bidir = text.use_bidirectional_attention
        rows = [meta] if caches is None else [meta.row(b) for b in range(embeds.shape[0])]
        # (row, layer type) → mask: every layer of a type holds the same tokens (same appends, same
        # evictions), so one mask per type and row serves all of them.
        masks: dict[tuple[int, str], torch.Tensor | str | None] = {}
        shared: dict[int, list[KVView]] = {}  # kv source layer → per-row K/V views
        h = embeds
        for i in range(len(lm.layers)):
            layer = lm.layer(i)
            spec = layer.spec
            cos, sin = rope[spec.layer_type]
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.project_q(x, cos, sin)
            if spec.kv_source == i:
                k, v = attn.project_kv(x, cos, sin)
                if caches is None:
                    views = [KVView(k, v, meta.seq_index, meta.block_ids, meta.valid)]
                else:
                    views = []
                    for b, row in enumerate(rows):
                        cache = caches[b][i]
                        assert cache is not None, "make_cache gives every K/V-producing layer a cache"
                        views.append(cache.update(k[b : b + 1], v[b : b + 1], row))
                shared[i] = views
            views = shared[spec.kv_source]
            outs = []
            for b, view in enumerate(views):
                key = (b, spec.layer_type)
                if key not in masks:
                    sliding = window if spec.layer_type == "sliding_attention" else None
                    masks[key] = build_mask(rows[b], view, sliding_window=sliding, bidirectional=bidir)
                q_rows = q if caches is None else q[b : b + 1]
                outs.append(_attend(q_rows, view, masks[key]))
            a = outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)
            h = h + layer.post_attention_layernorm(attn.o_proj(a))
            h = h + layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h)))
            h = h * layer.layer_scalar
        return lm.norm(h)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Soft-capped logits (fp32) of hidden states ``[..., hidden]``."""
        weight = (
            self.lm_head.weight
            if not self.config.tie_word_embeddings
            else self.model.language_model.embed_tokens.weight
        )
        logits = F.linear(hidden, weight).float()
        cap = self.config.text.final_logit_softcapping
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits
