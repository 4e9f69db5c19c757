"""A local stack's data is private to its owner (issue 25, item 1): `var/` holds the services'
databases, their key-encryption keys, Kafka's logs and passwords, and Keycloak's database with every
client secret and the realm's signing key. Whoever can read one of those can read captives' data
or mint tokens the services accept.

`captives up` makes everything it and its children create private (umask 077: files 0600,
folders 0700) and refuses to start on a `var/` that others can already read, naming what is
exposed and how to close it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
OTHERS = stat.S_IRWXG | stat.S_IRWXO


class NotPrivate(RuntimeError):
    """Files or folders under the stack's data that others than its owner may reach."""

    def __init__(self, root: Path, exposed: list[tuple[Path, int]]):
        self.root, self.exposed = root, exposed
        shown = "\n".join(f"  {path} ({mode:04o})" for path, mode in exposed[:10])
        more = f"\n  ... and {len(exposed) - 10} more" if len(exposed) > 10 else ""
        super().__init__(
            f"{root} is not private to its owner: {len(exposed)} path(s) other users may read or enter, "
            f"and it holds the services' keys, databases and passwords:\n{shown}{more}\n"
            f"Close it and start again: chmod -R go= {root}"
        )


def exposed(root: Path) -> list[tuple[Path, int]]:
    """Every path under `root` (itself included) that a user other than its owner may read, write
    or enter, as far as they can get to it: below a folder they cannot enter nothing is reachable,
    whatever its own mode (docker compose's secrets are 0644 in a 0700 folder, and stay private)."""
    found: list[tuple[Path, int]] = []
    pending = [root]
    while pending:
        path = pending.pop()
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue  # a link's own mode means nothing; what it points to is checked where it lives
        if mode & OTHERS:
            found.append((path, stat.S_IMODE(mode)))
        if stat.S_ISDIR(mode) and mode & (stat.S_IXGRP | stat.S_IXOTH):
            pending.extend(sorted(path.iterdir(), reverse=True))
    return sorted(found)


def make_private(root: Path) -> None:
    """From now on this process and every child it starts create only private files and folders;
    `root` is created private, and refused if others can already reach what it holds."""
    os.umask(PRIVATE_UMASK)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if found := exposed(root):
        raise NotPrivate(root, found)
