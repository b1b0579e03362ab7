"""The encrypted secrets file is written safely: a fresh O_EXCL temp file, 0600, fsync, then one rename."""
from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from app.config import secrets_file
from config import read_secrets_file, write_secrets_file

KEY = Fernet.generate_key().decode()


def test_a_link_planted_at_the_old_temp_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    target = tmp_path / "secrets.enc"
    (tmp_path / "secrets.enc.tmp").symlink_to(victim)  # where the old code wrote, following the link
    write_secrets_file(str(target), KEY, {"OPENAI_API_KEY": "sk-test-0123456789"})
    assert victim.read_text() == "untouched"
    assert read_secrets_file(str(target), KEY) == {"OPENAI_API_KEY": "sk-test-0123456789"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.enc", "secrets.enc.tmp", "victim"]


def test_the_file_and_its_directory_reach_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(src, dst):
        synced.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(secrets_file.os, "fsync", fsync)
    monkeypatch.setattr(secrets_file.os, "replace", replace)
    write_secrets_file(str(tmp_path / "s.enc"), KEY, {"A": "b"})
    assert synced == ["file", "rename", "dir"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "s.enc"
    write_secrets_file(str(target), KEY, {"A": "old"})

    def broken_replace(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(secrets_file.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_secrets_file(str(target), KEY, {"A": "new"})
    assert read_secrets_file(str(target), KEY) == {"A": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["s.enc"]
