"""Models trained by this project, shipped in the package and loaded by name wherever a run folder is accepted:
`--model NAME` in infer, evaluate, schedule_search and both exporters, and `--init_from NAME` in train.
Each folder holds config.yaml, weights.npz (the averaged weights, `runs.save_weights`) and its model card
(README.md). Loading one needs no network."""

from __future__ import annotations

import os
from pathlib import Path

DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.name for p in DIR.iterdir() if (p / "config.yaml").exists())


def resolve(model: str | os.PathLike) -> Path:
    """The folder of a run: `model` itself when it is a folder, else the pretrained model of that name."""
    path = Path(model)
    if path.is_dir() or os.sep in str(model) or not (DIR / str(model)).is_dir():
        return path
    return DIR / str(model)
