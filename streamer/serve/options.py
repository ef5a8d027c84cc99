"""How ``streamer serve`` runs: addresses, ports, credentials, limits (one dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamer.errors import InputError
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

    def check_files(self) -> None:
        """Raise :class:`InputError` naming the option unless the TLS pair loads and the folders exist.

        Called before a model loads, so a typo in a path is one line, not a traceback from the
        HTTP server's start (``ssl.SSLError``, starlette's ``RuntimeError``) after the load.
        """
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InputError("--tls-cert and --tls-key go together")
        if self.tls_cert is not None and self.tls_key is not None:
            _check_tls(self.tls_cert, self.tls_key)
        for flag, folder in (("--web-dir", self.web_dir), ("--summarize-dir", self.summarize_dir)):
            if folder is not None and not Path(folder).is_dir():
                raise InputError(f"{flag} {folder}: not a directory")


def _check_tls(cert: str, key: str) -> None:
    import ssl

    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise InputError(f"{flag} {path}: no such file (or not a file)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise InputError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate chain and its private key ({exc})"
        ) from exc
