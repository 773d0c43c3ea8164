"""Private data folders: what the cloud or a gateway keeps there is readable by its own user only.

Databases (and SQLite's ``-wal`` and ``-shm`` beside them), keys, TUF metadata, model files and reports are
created by many hands (SQLite, python-tuf, our writers), each with its own idea of a mode. The process umask is
the one setting that reaches all of them, so ``private_data_dir`` tightens it to 077 when a process opens its
data folder (files then come out 0600, folders 0700), creates the folder 0700, and once per process takes group
and other permissions off whatever an earlier version left there. Symbolic links are left alone: their modes are
their targets', which may lie outside the folder.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: group and others get nothing
PRIVATE_UMASK = 0o077

_tightened: set[Path] = set()
_lock = threading.Lock()


def private_data_dir(path: Path) -> Path:
    """Make ``path`` (created if missing) and everything in it private to this user; return ``path``.

    The umask is kept for the rest of the process: every later file anywhere is private too, which is what a
    cloud or gateway process wants. A umask stricter than 077 is kept as it is.
    """
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = path.resolve()
    with _lock:
        if root not in _tightened:
            _tighten(root)
            _tightened.add(root)
    return path


def _tighten(root: Path) -> None:
    _strip(root)
    for folder, names, files in os.walk(root, onerror=None):  # never follows links into other folders
        for name in (*names, *files):
            _strip(Path(folder) / name)


def _strip(path: Path) -> None:
    try:
        status = path.lstat()
    except FileNotFoundError:  # removed while we walked (a SQLite journal, a temporary file)
        return
    if stat.S_ISLNK(status.st_mode) or not status.st_mode & PRIVATE_UMASK:
        return
    try:
        path.chmod(stat.S_IMODE(status.st_mode) & ~PRIVATE_UMASK)
    except PermissionError:  # another user's file: not ours to change, and not ours to fail on
        log.warning("%s is readable by others and not this user's to make private", path)
