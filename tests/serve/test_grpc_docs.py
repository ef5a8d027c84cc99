"""The gRPC examples in docs/protocol.md are valid messages of the proto (text format)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format

from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _grpc_example_lines() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## gRPC") :]
    lines = []
    for block in section.split("```")[1::2]:
        lines += [line for line in block.splitlines() if line.startswith(("→ ", "← "))]
    return lines


def test_the_doc_has_a_full_grpc_exchange():
    lines = _grpc_example_lines()
    kinds = {line.split()[1] + " " + line.split()[3] for line in lines if line.split()[1] == "seq:"}
    assert {
        "seq: setup",
        "seq: frame",
        "seq: audio",
        "seq: text",
        "seq: ask",
        "seq: cancel",
        "seq: close",
    } <= kinds


@pytest.mark.parametrize("line", _grpc_example_lines())
def test_every_example_line_parses(line):
    arrow, body = line[:1], line[2:].split("   (")[0].strip()
    if body.startswith("Ask {"):
        text_format.Parse(body[len("Ask {") : -1], pb.AskRequest())
    elif arrow == "←" and body.startswith("{"):
        text_format.Parse(body[1:-1], pb.AskResponse())
    elif arrow == "→":
        text_format.Parse(body, pb.LiveRequest())
    else:
        text_format.Parse(body, pb.LiveResponse())
