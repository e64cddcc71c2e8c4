"""Exports of a trained model: the TF Serving SavedModel (`export.saved_model_lib`, command line `export.saved_model`)
and the on-device TFLite files (`export.tflite_lib`, command line `export.tflite`), both built from the graphs of
`export.graphs`, each written whole into a fresh folder (`swap_in`). The clients that run them are backends of
`wavegrad_tf.vocoders`."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Collection

from wavegrad_tf.errors import UserError
from wavegrad_tf.files import partial_folder
from wavegrad_tf.runtime.metadata import FILENAME


def _listing(names, limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_replaceable(target: str | os.PathLike, owned: Collection[str] = ()) -> list[str]:
    """An export may go to `target`: it is new, empty, or an earlier export: a folder holding wavegrad.json and
    nothing but the files an export writes (`owned`). Returns what it holds; anything else is refused, naming the
    files that are not ours (nothing is changed)."""
    target = Path(target)
    if not target.exists():
        return []
    if not target.is_dir():
        raise UserError(f"--output {target}: is a file; expected a folder for the export")
    held = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir())
    foreign = [name for name in held if name not in owned and name != FILENAME]
    if foreign or (held and FILENAME not in held):
        raise UserError(f"--output {target}: holds {_listing(foreign or held)}, which no export wrote; expected a new "
                        "folder, an empty one or an earlier export (nothing was changed)")
    return held


@contextlib.contextmanager
def swap_in(target: str | os.PathLike, owned: Collection[str] = ()):
    """Yields a fresh folder beside `target`; when the block succeeds it becomes `target` in one rename, so a
    reader never sees half an export, nor a new file beside an old one. A failed or killed export leaves `target`
    as it was (its hidden .partial folder is removed on failure, or by the next export if the process was killed).
    An existing target is replaced only if `check_replaceable` allows it."""
    target = Path(os.path.abspath(target))  # a path ending in .. names its folder, not a file called '..'
    check_replaceable(target, owned)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = partial_folder(target)
    try:
        yield fresh
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}") if target.exists() else None
    if old:
        os.replace(target, old)
    os.replace(fresh, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def added_beside(target: str | os.PathLike):
    """Yields a fresh folder beside `target`, an earlier export; when the block succeeds each file of it is renamed
    into `target` (replacing only the files of the same name), so the other files of the export stay."""
    target = Path(os.path.abspath(target))
    fresh = partial_folder(target)
    try:
        yield fresh
        for path in sorted(fresh.iterdir()):
            if path.is_file():
                os.replace(path, target / path.name)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
