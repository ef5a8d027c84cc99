"""``streamer summarize --ray``: the same outputs as the local run, replicas dying mid-job included."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray.serve")
from media._gen import write_media  # noqa: E402

from streamer.cli import main  # noqa: E402
from streamer.serve.ray_config import APP_NAME, RayServeConfig  # noqa: E402
from streamer.summarize.pipeline import CRASH_ENV  # noqa: E402

pytestmark = pytest.mark.timeout(300)
CHUNK = ["--chunk-minutes", "0.25", "--note-tokens", "8", "--summary-tokens", "16", "--format", "md"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("recordings")
    return [
        write_media(d / "standup.mp4", duration_s=40.0, fps=2, size=(96, 64)),
        write_media(
            d / "call.flac", vcodec=None, acodec="flac", duration_s=35.0, sample_rate=16000, channels=1
        ),
    ]


def test_summarize_on_ray_equals_local_even_when_each_replica_dies_after_a_chunk(
    ray_cluster, bundled_dir, recordings, tmp_path, capsys
):
    from ray import serve

    from streamer.serve.ray_app import build_app

    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["summarize", *map(str, recordings), "--out", str(local), *CHUNK, "--threads", "1"]) == 0
    capsys.readouterr()
    # Every replica kills its own process (SIGKILL) right after saving a recording's first chunk.
    config = RayServeConfig(
        model=str(bundled_dir), num_replicas=2, num_cpus=0.5, env={CRASH_ENV: "1"}, health_check_period_s=1.0
    )
    serve.run(build_app(config), name=APP_NAME, route_prefix=None)
    try:
        code = main(
            [
                "summarize",
                *map(str, recordings),
                "--out",
                str(remote),
                *CHUNK,
                "--model",
                str(bundled_dir),
                "--ray",
            ]
        )
        err = capsys.readouterr().err
        assert code == 0, err
    finally:
        serve.delete(APP_NAME)
    assert "over 2 Ray Serve replica(s)" in err
    # Each job lost its replica after saving chunk 1 and went on after it elsewhere. (A job can also
    # lose a replica to the other job's crash; with nothing saved yet it then starts over.)
    for path in recordings:
        assert f"{path.name}: its replica failed" in err and f"{path.name}: resuming after chunk 1" in err, (
            err
        )
    for md in local.glob("*.md"):
        assert (remote / md.name).read_text() == md.read_text(), md.name
    assert sorted(p.name for p in remote.iterdir()) == sorted(p.name for p in local.iterdir())
