"""Folders the stack makes for what it keeps (keys, databases, passwords, logs), private to their
owner whatever the umask of whoever started it: `mkdir(parents=True, mode=0o700)` gives the mode
to the last folder only, and the ones above it take the umask's (0755 under the usual 022).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_DIRECTORY = 0o700


def private_directory(path: Path) -> Path:
    """Make `path` and every missing folder above it 0700. A folder there already is left as it is
    (a database beside the user's own files must not close his folder); `captives up` refuses a
    `var/` that others can read, naming each path."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=PRIVATE_DIRECTORY)
        os.chmod(folder, PRIVATE_DIRECTORY)  # the umask may have taken bits off, never added them
    return path
