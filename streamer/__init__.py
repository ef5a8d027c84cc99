"""streamer: streaming audio/video inference for encoder-free Gemma 4 Unified models.

Data flow: ``media`` (containers, live chunks) → ``engine`` (unified sequence, KV cache,
scheduler) → endpoints (``cli``, gRPC, WebSocket, Ray Serve), on top of ``model`` (the network).
"""

__version__ = "0.1.0"
