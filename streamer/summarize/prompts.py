"""The questions summarize asks, with defaults the user can replace (``--prompt FILE``).

Four prompts, each a template with ``{placeholders}`` (unknown ones are left as written):

    system    the session's system prompt
    notes     asked at the end of each chunk      {start} {end} {gaps}
    summary   asked once at the end               {duration} {gaps}
    merge     condenses a group of notes when they outgrow the context (hierarchical summary)
                                                  {start} {end}

A ``.toml`` prompt file sets any of the four by name (an unknown name is an error); any other
file replaces the summary prompt with its whole text. Times are ``mm:ss``, as the frames'
timestamps the model sees.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from streamer.errors import InputError

__all__ = ["Prompts", "load_prompts", "fill", "asked_sections", "MAX_PROMPT_CHARS"]

MAX_PROMPT_CHARS = 8_000  # characters per prompt template (a question is capped at 16 384)

DEFAULT_SYSTEM = (
    "You watch and listen to a meeting recording and take accurate notes. "
    "Refer to moments by their mm:ss time."
)
DEFAULT_NOTES = (
    "Write notes on the meeting from {start} to {end}: what was said and by whom, what was shown, "
    "decisions and action items. One short line per point, each starting with its mm:ss time.{gaps}"
)
DEFAULT_SUMMARY = (
    "Using the notes above, summarize the whole meeting ({duration}). "
    "Use exactly these headings, each on its own line:\n"
    "Overview: two or three sentences.\n"
    'Key points: one line each, starting with "- ".\n'
    'Decisions: one line each, starting with "- ".\n'
    'Action items: one line each, starting with "- ", saying who does what by when.\n'
    "Give mm:ss times where they help.{gaps}"
)
DEFAULT_MERGE = (
    "Condense the notes above on the meeting from {start} to {end} into fewer lines. "
    "Keep every decision and action item, each line starting with its mm:ss time."
)

_PLACEHOLDER = re.compile(r"\{(start|end|gaps|duration)\}")


@dataclass(frozen=True)
class Prompts:
    """The four prompt templates (see the module docstring for their placeholders)."""

    system: str = DEFAULT_SYSTEM  # the session's system prompt
    notes: str = DEFAULT_NOTES  # asked after each chunk
    summary: str = DEFAULT_SUMMARY  # asked once at the end
    merge: str = DEFAULT_MERGE  # condenses a group of notes (hierarchical summary)

    def __post_init__(self) -> None:
        for name, text in asdict(self).items():
            if not text.strip():
                raise InputError(f"the {name} prompt is empty")
            if len(text) > MAX_PROMPT_CHARS:
                raise InputError(f"the {name} prompt is longer than {MAX_PROMPT_CHARS} characters")

    def digest(self) -> str:
        """A short hash of all four templates (resume refuses other prompts)."""
        h = hashlib.sha256(repr(sorted(asdict(self).items())).encode("utf-8"))
        return h.hexdigest()[:16]


def load_prompts(path: str | Path | None) -> Prompts:
    """The default prompts, with those of ``path`` (see the module docstring) in their place."""
    if path is None:
        return Prompts()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the prompt file {file}: {exc}") from exc
    if file.suffix.lower() != ".toml":
        return replace(Prompts(), summary=text.strip())
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser before it joined the standard library
        import tomli as tomllib

    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{file}: not valid TOML ({exc})") from exc
    known = set(asdict(Prompts()))
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(
            f"{file}: unknown prompt name(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    bad = sorted(k for k, v in table.items() if not isinstance(v, str))
    if bad:
        raise InputError(f"{file}: prompt(s) {', '.join(bad)} must be strings")
    return replace(Prompts(), **{k: v.strip() for k, v in table.items()})


def fill(template: str, **values: str) -> str:
    """``template`` with its known placeholders replaced (a missing value becomes empty)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def asked_sections(summary_prompt: str) -> frozenset[str]:
    """Optional sections the summary prompt asks for: ``decisions`` and/or ``action_items``."""
    text = summary_prompt.lower()
    out = set()
    if re.search(r"\bdecision", text):
        out.add("decisions")
    if re.search(r"\baction[ -]items?\b|\bto-?dos?\b|\bnext steps\b", text):
        out.add("action_items")
    return frozenset(out)
