"""The committed generated gRPC code is what `make proto` generates from the proto today."""

from __future__ import annotations

import pytest

from streamer.serve import grpc_codegen

pytestmark = pytest.mark.timeout(120)


def test_generated_code_is_current():
    stale = grpc_codegen.stale_files()
    assert stale == [], f"stale generated gRPC code ({', '.join(stale)}): run `make proto`"


def test_generated_grpc_module_imports_its_messages_relatively():
    text = (grpc_codegen.OUT_ROOT / "streamer" / "v1" / "streamer_pb2_grpc.py").read_text()
    assert "from . import streamer_pb2" in text and "from streamer.v1" not in text
