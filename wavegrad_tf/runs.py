"""A training run's folder: config.yaml, checkpoints/ (weights, their moving average, Adam state, step),
data_split.json. Loading a model from it, for inference, export and fine-tuning."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import logging

from wavegrad_tf import hardware, pretrained
from wavegrad_tf.config import Config, load_config
from wavegrad_tf.errors import UserError
from wavegrad_tf.model import WaveGrad, build_model, checkpoint_variables


class RunError(UserError):
    """A folder that is not a usable training run; the message names the folder and what is missing."""


@contextlib.contextmanager
def exclusive(model_dir: str | os.PathLike):
    """Holds an exclusive lock on a run folder while it trains: a second training process on the same folder is
    refused with the holder's PID. The lock is the kernel's (flock), so a killed holder leaves none behind."""
    import fcntl

    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunError(f"--model_dir {folder}: another training process (PID {holder}) is writing this run; "
                           "wait for it to end, or train into another folder") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # while still held: nobody else can hold it between the two


def read_config(run: str | os.PathLike) -> Config:
    """The config of a run folder or a pretrained model."""
    folder = pretrained.resolve(run)
    if not folder.is_dir():
        raise RunError(f"--model {run}: no such folder or pretrained model (pretrained: {pretrained.names()})")
    if not (folder / "config.yaml").exists():
        raise RunError(f"--model {run}: no config.yaml (is it a training run's folder?)")
    return load_config(folder / "config.yaml")


def training_files(run: str | os.PathLike) -> list[str]:
    """The audio files the run trained on (data_split.json)."""
    split = pretrained.resolve(run) / "data_split.json"
    if not split.exists():
        raise RunError(f"--model {run}: no data_split.json to find its training audio")
    return json.loads(split.read_text())["train"]


def checkpoints(run: str | os.PathLike) -> list[str]:
    """The run's checkpoint prefixes, newest first (the manager's record, else the files present)."""
    folder = Path(run) / "checkpoints"
    state = tf.train.get_checkpoint_state(str(folder))
    listed = list(state.all_model_checkpoint_paths) if state else []
    present = {str(p.with_suffix("")) for p in folder.glob("ckpt-*.index")}
    # get_checkpoint_state already prefixes the folder; the name alone keeps a moved run readable
    prefixes = [str(folder / Path(p).name) for p in listed]
    prefixes += sorted(present - set(prefixes))
    return sorted(set(prefixes), key=lambda p: int(p.rsplit("-", 1)[1]), reverse=True)


def has_average(prefix: str) -> bool:
    return any(k.startswith("ema/") for k in tf.train.load_checkpoint(prefix).get_variable_to_shape_map())


def restore_weights(model: WaveGrad, run: str | os.PathLike, averaged: bool = True, flag: str = "--model") -> str:
    """Loads the newest intact checkpoint's weights (their moving average where the run kept one and
    `averaged`) into `model`; a corrupt newest checkpoint is skipped with a warning. A pretrained model's
    folder holds its averaged weights alone, in weights.npz. Returns what was loaded."""
    run = pretrained.resolve(run)
    if (run / WEIGHTS).exists():
        return _load_weights(model, run / WEIGHTS)
    found = checkpoints(run)
    if not found:
        raise RunError(f"{flag} {run}: no checkpoint in {Path(run) / 'checkpoints'}")
    errors = []
    for prefix in found:
        try:
            key = "ema" if averaged and has_average(prefix) else "model"
            tf.train.Checkpoint(**{key: checkpoint_variables(model)}).restore(prefix).expect_partial() \
                .assert_existing_objects_matched()
            if errors:
                logging.warning("%s; using %s", "; ".join(errors), prefix)
            return prefix
        except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
            errors.append(f"checkpoint {prefix} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    raise RunError(f"{flag} {run}: no intact checkpoint: " + "; ".join(errors))


def load_model(run: str | os.PathLike, dtype: str = "float32") -> tuple[Config, WaveGrad]:
    """(config, WaveGrad with the newest intact checkpoint's averaged weights) of a training run."""
    cfg = read_config(run)
    hardware.configure_tensorflow()
    model = build_model(cfg, dtype=dtype)
    restore_weights(model, run)
    return cfg, model


WEIGHTS = "weights.npz"


def save_weights(run: str | os.PathLike, path: str | os.PathLike, dtype: str = "float16") -> Path:
    """The run's averaged weights alone, as {path below the model: array} in `dtype`: a pretrained model's file."""
    _, model = load_model(run)
    path = Path(path)
    np.savez(path, **{name: np.asarray(var).astype(dtype) for name, var in checkpoint_variables(model).items()})
    return path


def _load_weights(model: WaveGrad, path: Path) -> str:
    stored = np.load(path)
    variables = checkpoint_variables(model)
    if set(stored.files) != set(variables):
        raise RunError(f"{path}: holds {len(stored.files)} weights, the config's network {len(variables)}; "
                       f"missing {sorted(set(variables) - set(stored.files))[:3]}")
    for name, var in variables.items():
        if tuple(stored[name].shape) != tuple(var.shape):
            raise RunError(f"{path}: {name} is {stored[name].shape}, the config's network expects {tuple(var.shape)}")
        var.assign(stored[name].astype(np.float32))
    return str(path)
