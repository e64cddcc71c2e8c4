"""Exports of a trained model: the TF Serving SavedModel (`export.saved_model_lib`, command line `export.saved_model`)
and the on-device TFLite files (`export.tflite_lib`, command line `export.tflite`), both built from the graphs of
`export.graphs`, each written whole into a fresh folder (`swap_in`). The clients that run them are backends of
`wavegrad_tf.vocoders`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime.metadata import FILENAME


def check_replaceable(target: str | os.PathLike) -> None:
    """An export may go to `target`: it is new, empty, or an earlier export (it holds wavegrad.json)."""
    target = Path(target)
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or (target / FILENAME).exists())):
        raise UserError(f"--output {target}: exists and is not an earlier export to replace; expected a new folder")


@contextlib.contextmanager
def swap_in(target: str | os.PathLike):
    """Yields a fresh folder beside `target`; when the block succeeds it becomes `target` in one rename, so a
    reader never sees half an export, nor a new file beside an old one. A failed or killed export leaves
    `target` as it was (a hidden .partial folder beside it is removed on failure). An existing target is replaced
    whole if it is an earlier export (it holds wavegrad.json) or empty; anything else is refused."""
    target = Path(target)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
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
