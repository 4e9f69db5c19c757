"""Folders the stack makes are private whatever the umask (shared/platform/private_files.py)."""

from __future__ import annotations

import os

from shared.platform.private_files import private_directory


def test_every_folder_made_is_private_under_a_permissive_umask_and_existing_ones_are_left_alone(tmp_path):
    mine = tmp_path / "users-own"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    previous = os.umask(0o022)
    try:
        made = private_directory(mine / "var" / "keys" / "pinned")
        private_directory(made)  # again: nothing to do
    finally:
        os.umask(previous)
    for folder in (mine / "var", mine / "var" / "keys", made):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert mine.stat().st_mode & 0o777 == 0o755  # not ours to close
