from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile

from streamer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_probe_json_and_dump(h264_aac: Path, tmp_path: Path, capsys) -> None:
    assert main(["probe", str(h264_aac), "--frames", "4", "--json", "--dump", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"duration_s", "video", "audio", "frames", "audio_tokens", "warnings"}
    assert out["video"] == {"codec": "h264", "width": 128, "height": 96, "fps": 25.0}
    assert out["audio"] == {"codec": "aac", "sample_rate": 48000, "channels": 2}
    assert len(out["frames"]) == 4 and out["audio_tokens"] in (150, 151)
    pngs = sorted(p.name for p in tmp_path.glob("frame_*.png"))
    assert len(pngs) == 4 and pngs[0] == "frame_00000_00000000.png"
    wav, rate = soundfile.read(tmp_path / "audio_16k.wav")
    assert rate == 16000 and abs(len(wav) - 96000) < 1100


def test_probe_summary_and_errors(h264_aac: Path, tmp_path: Path, capsys) -> None:
    assert main(["probe", str(h264_aac), "--scene", "0.05"]) == 0
    assert "h264 128x96" in capsys.readouterr().out
    (tmp_path / "x.mp4").write_text("not a video")
    assert main(["probe", str(tmp_path / "x.mp4")]) == 1
    assert "not a media file" in capsys.readouterr().err
    assert main(["probe", str(h264_aac), "--fps", "0"]) == 2  # a usage error, before the file is opened
    assert "argument --fps: must be a number in (0, 1000], got '0'" in capsys.readouterr().err


def test_probe_imports_no_torch(h264_aac: Path) -> None:
    code = f"import sys; from streamer.cli import main; main(['probe', {str(h264_aac)!r}]); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
