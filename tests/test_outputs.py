"""streamer.outputs: only regular files are written, checked before work, no temporaries left."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from streamer.errors import OutputError
from streamer.outputs import atomic_write_bytes, atomic_write_text, check_output_dir, check_output_file


def test_character_device_is_refused_and_left_alone():
    with pytest.raises(OutputError, match="/dev/null is a character device, not a regular file"):
        check_output_file("/dev/null")
    with pytest.raises(OutputError, match="character device"):
        atomic_write_text("/dev/null", "x")
    assert Path("/dev/null").is_char_device()


def test_fifo_directory_and_socket_are_refused_by_name(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError, match=r"fifo is a FIFO \(named pipe\)"):
        atomic_write_text(tmp_path / "fifo", "x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputError, match="dir is a directory"):
        atomic_write_text(tmp_path / "dir", "x")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(OutputError, match="sock is a socket"):
            check_output_file(tmp_path / "sock")
    assert sorted(os.listdir(tmp_path)) == ["dir", "fifo", "sock"]  # nothing written, nothing left


def test_symlink_is_followed_not_replaced(tmp_path):
    (tmp_path / "real.md").write_text("old")
    (tmp_path / "link.md").symlink_to(tmp_path / "real.md")
    atomic_write_text(tmp_path / "link.md", "new")
    assert (tmp_path / "link.md").is_symlink() and (tmp_path / "real.md").read_text() == "new"


@pytest.mark.parametrize("where", ["/proc/streamer-test/out.md", "{file}/out.md"])
def test_impossible_folders_are_one_error(tmp_path, where):
    (tmp_path / "file").write_text("a file")
    with pytest.raises(OutputError, match="cannot (create|write)|is a file, not a directory"):
        check_output_file(where.format(file=tmp_path / "file"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_read_only_folder(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(OutputError, match="cannot write in"):
        check_output_file(tmp_path / "ro" / "out.md")


def test_check_output_dir_without_creating(tmp_path):
    assert check_output_dir(tmp_path / "later", create=False) == tmp_path / "later"
    assert not (tmp_path / "later").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="not a directory"):
        check_output_dir(tmp_path / "file", create=False)


def test_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.md"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="cannot write .*out.md: No space left on device"):
        atomic_write_text(target, "new")
    assert os.listdir(tmp_path) == ["out.md"] and target.read_text() == "old"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
