"""How ``streamer serve`` runs: addresses, ports, credentials, limits (one dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamer.serve.limits import ServeLimits

__all__ = ["ServeOptions"]


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"  # address both servers listen on
    http_port: int = 8000  # HTTP + WebSocket (0: any free port)
    grpc_port: int | None = 50051  # gRPC (None: no gRPC server; 0: any free port)
    api_key: str | None = None  # required off loopback
    tls_cert: str | None = None  # PEM certificate chain (with tls_key: HTTPS/WSS and gRPC TLS)
    tls_key: str | None = None  # PEM private key
    limits: ServeLimits = field(default_factory=ServeLimits)
    grace_s: float = 10.0  # seconds answers may run on after SIGTERM before they are cancelled
    web_dir: str | None = None  # the browser client's folder (None: frontends/web of this checkout)
    log_level: str = "info"  # uvicorn's log level
    summarize_dir: str | None = None  # server-side folder gRPC Summarize may read (None: uploads only)
