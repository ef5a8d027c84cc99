"""This process's memory, as the benchmarks report it (Linux /proc; ``resource`` elsewhere)."""

from __future__ import annotations

__all__ = ["peak_rss_mb", "rss_mb"]


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS in MiB: VmHWM (per address space, so unaffected by the parent before exec)."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # includes pre-exec RSS on Linux


def rss_mb() -> float:
    """Current RSS in MiB (NaN where /proc is missing)."""
    now = _status_mb("VmRSS")
    return float("nan") if now is None else now
