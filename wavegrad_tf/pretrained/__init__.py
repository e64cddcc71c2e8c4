"""Models trained by this project, shipped in the package and loaded by name wherever a run folder is accepted:
`--model NAME` in infer, evaluate, schedule_search, web and both exporters, `--init_from NAME` in train, and
`WaveGrad.from_preset(NAME)`. Each folder holds config.yaml, weights.npz (the averaged weights, written by
`python -m wavegrad_tf.package`) and its model card (README.md). Loading one needs no network."""

from __future__ import annotations

import os
from pathlib import Path

DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """Every pretrained model: each folder here (`runs.Run` reads it)."""
    return sorted(p.name for p in DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def folder(model: str | os.PathLike) -> Path:
    """The folder `model` names: itself when it is a folder or a path, else the pretrained model of that name."""
    path = Path(model)
    if path.is_dir() or os.sep in str(model) or not (DIR / str(model)).is_dir():
        return path
    return DIR / str(model)
