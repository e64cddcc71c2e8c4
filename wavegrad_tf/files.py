"""Writing outputs the way users expect: whole or not at all (a hidden partial renamed into place), with the
permissions the user's umask gives a new file, and no partial of a killed writer left behind for long.

A partial's name carries its writer's PID (`.NAME.PID.XXXX.partial`): the next writer of the same output removes
those whose writer is gone (kill -9 runs no cleanup), never a live writer's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PARTIAL = ".partial"


def umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: set it straight back
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Removes the partials of `target` whose writer has died; returns them."""
    removed = []
    for path in target.parent.glob(f".{glob_escape(target.name)}.*{PARTIAL}"):
        pid = path.name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def partial_file(target: Path) -> Path:
    """A new, empty hidden file beside `target`, readable as a new file of the user's would be."""
    remove_stale_partials(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=PARTIAL, dir=target.parent)
    os.fchmod(handle, 0o666 & ~umask())  # mkstemp makes 0600: TF Serving or a web server may run as another user
    os.close(handle)
    return Path(name)


def partial_folder(target: Path) -> Path:
    """A new, empty hidden folder beside `target`, with a new folder's permissions."""
    remove_stale_partials(target)
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=PARTIAL, dir=target.parent))
    path.chmod(0o777 & ~umask())
    return path


@contextlib.contextmanager
def written_whole(target: str | os.PathLike):
    """Yields a partial file for `target`; when the block succeeds it replaces `target` in one rename, else it is
    removed."""
    target = Path(target)
    partial = partial_file(target)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
