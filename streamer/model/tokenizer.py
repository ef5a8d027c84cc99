"""The checkpoint's own tokenizer (``tokenizer.json``) and chat template (jinja2, sandboxed).

Nothing about the real Gemma template is hard-coded: the turn markers a live session needs
(what opens a user turn, what closes it, what starts the model's answer) are found by rendering
the checkpoint's template around sentinel strings (:class:`ChatFormat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer as HFTokenizer

from streamer import jsonio
from streamer.errors import TokenizerError

__all__ = ["ChatFormat", "Tokenizer", "IncrementalDecoder", "load_tokenizer"]

_SENTINEL = "\u2063STREAMER-SENTINEL\u2063"


@dataclass(frozen=True)
class ChatFormat:
    """Turn markers derived from the chat template."""

    bos: str  # text the template puts before the first turn (often the BOS token)
    system_prefix: str  # opens a system turn
    system_suffix: str  # closes it
    user_prefix: str  # opens a user turn
    user_suffix: str  # closes it
    generation_prompt: str  # starts the model's answer
    model_suffix: str  # closes the model's turn after its answer


class Tokenizer:
    """Encode/decode with ``tokenizer.json``; render chats with the checkpoint's template."""

    def __init__(self, tokenizer: HFTokenizer, template: str | None, special: dict[str, str]):
        self._tok = tokenizer
        self.special = special  # e.g. {"bos_token": "<bos>", "eos_token": "<eos>"}
        self._template = None
        if template is not None:
            # The settings transformers renders chat templates with, so templates behave the same.
            env = ImmutableSandboxedEnvironment(
                trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
            )
            env.globals["raise_exception"] = _raise_template_error
            env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
            try:
                self._template = env.from_string(template)
            except TemplateError as exc:
                raise TokenizerError(f"chat template does not parse: {exc}") from exc
        self.chat_format = self._probe_format() if self._template is not None else None

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """The chat template applied to ``messages`` (role/content dicts)."""
        if self._template is None:
            raise TokenizerError(
                "this checkpoint has no chat template (chat_template.jinja or tokenizer_config.json)"
            )
        try:
            return self._template.render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self.special
            )
        except TemplateError as exc:
            raise TokenizerError(f"chat template failed to render: {exc}") from exc

    def _probe_format(self) -> ChatFormat:
        def split(messages: list[dict[str, Any]], gen: bool) -> tuple[str, str]:
            text = self.render(messages, add_generation_prompt=gen)
            if _SENTINEL not in text:
                raise TokenizerError("chat template drops message content; cannot derive turn markers")
            before, after = text.split(_SENTINEL, 1)
            return before, after

        user_before, user_after = split([{"role": "user", "content": _SENTINEL}], False)
        _, with_gen = split([{"role": "user", "content": _SENTINEL}], True)
        generation_prompt = with_gen[len(user_after) :] if with_gen.startswith(user_after) else ""
        two = self.render(
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": _SENTINEL}],
            add_generation_prompt=False,
        )
        model_suffix = two.split(_SENTINEL, 1)[1] if _SENTINEL in two else ""
        bos = _bos_of(user_before, self.special)
        try:
            sys_before, sys_after = split(
                [{"role": "system", "content": _SENTINEL}, {"role": "user", "content": "a"}], False
            )
            system_prefix = sys_before[len(bos) :]
            system_suffix = (
                sys_after[: sys_after.find(user_before[len(bos) :])] if user_before[len(bos) :] else sys_after
            )
        except TokenizerError:
            system_prefix, system_suffix = user_before[len(bos) :], user_after
        return ChatFormat(
            bos=bos,
            system_prefix=system_prefix,
            system_suffix=system_suffix,
            user_prefix=user_before[len(bos) :],
            user_suffix=user_after,
            generation_prompt=generation_prompt,
            model_suffix=model_suffix,
        )


def _bos_of(user_before: str, special: dict[str, str]) -> str:
    bos = special.get("bos_token") or ""
    return bos if bos and user_before.startswith(bos) else ""


def _raise_template_error(message: str) -> None:
    raise TemplateError(message)


class IncrementalDecoder:
    """Turns a growing list of token ids into text deltas that never split a UTF-8 character."""

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = True):
        self._tok = tokenizer
        self._skip = skip_special_tokens
        self._ids: list[int] = []
        self._emitted = ""

    def push(self, token_id: int) -> str:
        """Add one token; return the new text (possibly empty while a character is incomplete)."""
        self._ids.append(token_id)
        text = self._tok.decode(self._ids, skip_special_tokens=self._skip)
        if text.endswith("\ufffd"):
            return ""  # an incomplete multi-byte character: wait for the next token
        delta = text[len(self._emitted) :] if text.startswith(self._emitted) else text
        self._emitted = text
        return delta

    @property
    def text(self) -> str:
        return self._emitted


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """Load ``tokenizer.json`` and the chat template of a checkpoint directory."""
    path = Path(model_dir)
    tok_file = path / "tokenizer.json"
    if not tok_file.is_file():
        raise TokenizerError(f"{path}: no tokenizer.json (text prompts need the checkpoint's tokenizer)")
    try:
        tokenizer = HFTokenizer.from_file(str(tok_file))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise TokenizerError(f"{tok_file} cannot be loaded: {exc}") from exc
    config: dict[str, Any] = {}
    cfg_file = path / "tokenizer_config.json"
    if cfg_file.is_file():
        try:
            config = jsonio.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TokenizerError(f"{cfg_file} is not valid JSON: {exc}") from exc
    template = None
    jinja_file = path / "chat_template.jinja"
    if jinja_file.is_file():
        template = jinja_file.read_text(encoding="utf-8")
    elif isinstance(config.get("chat_template"), str):
        template = config["chat_template"]
    elif isinstance(config.get("chat_template"), list):  # [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in config["chat_template"] if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    special = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    return Tokenizer(tokenizer, template, special)
