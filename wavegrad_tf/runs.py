"""A training run's folder, or a pretrained model's: the one class (`Run`) that knows what such a folder holds, for
reading and for writing (no other module names a file or folder of it: tests/test_architecture.py checks).

    config.yaml       the run's config (read once per `Run`)
    data_split.json   the files it trained on, held out and skipped
    checkpoints/      weights, their moving average, Adam state, step (a training run)
    train/, validation/   TensorBoard logs of the training loop and of validation
    audio_cache/      the decoded corpus (unless --cache_dir puts it elsewhere)
    workers/<i>/      what a non-chief worker of a multi-worker run writes (tf.distribute wants it aside)
    weights.npz       the averaged weights alone (a pretrained model: `wavegrad_tf.package`)

TensorFlow is imported only by the methods that touch weights: the runtimes without it ask a `Run` for its
config and split too.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from absl import logging

from wavegrad_tf import pretrained
from wavegrad_tf.config import Config, load_config, resume_config
from wavegrad_tf.errors import UserError

CONFIG, SPLIT, WEIGHTS, CHECKPOINTS = "config.yaml", "data_split.json", "weights.npz", "checkpoints"
CACHE, WORKERS, LOGS = "audio_cache", "workers", {"train": "train", "validation": "validation"}


def checkpoint_variables(network) -> dict:
    """{path below the network: variable}: how a run names its weights (tf.train.Checkpoint does not see layers
    kept in lists)."""
    return {v.path.split("/", 1)[1]: v for v in network.weights}


class RunError(UserError):
    """A folder that is not a usable training run; the message names the folder and what is missing."""


class Run:
    """`folder` holds (or will hold) a run; `name` is how the user named it (a path or a pretrained name)."""

    def __init__(self, folder: str | os.PathLike, name: Optional[str] = None, flag: str = "--model"):
        self.folder, self.name, self.flag = Path(folder), name or str(folder), flag

    @classmethod
    def find(cls, model: str | os.PathLike, flag: str = "--model") -> Optional["Run"]:
        """The run or pretrained model `model` names (a folder with config.yaml), or None if it names none."""
        folder = pretrained.folder(model)
        return cls(folder, str(model), flag) if (folder / CONFIG).is_file() else None

    @classmethod
    def open(cls, model, flag: str = "--model") -> "Run":
        """The run `model` names (a run folder or pretrained name), or `model` itself if it is a `Run`."""
        if isinstance(model, Run):
            return model
        run = cls.find(model, flag)
        if run is None:
            raise RunError(f"{flag} {model}: not a training run's folder (no {CONFIG}) nor a pretrained model "
                           f"(pretrained: {', '.join(pretrained.names())})")
        return run

    def __repr__(self) -> str:
        return f"Run({self.name!r})"

    # -- what the run is ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG

    @functools.cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def exists(self) -> bool:
        return (self.folder / CONFIG).is_file()

    def save_config(self, cfg: Config) -> None:
        cfg.save(self.folder / CONFIG)
        self.__dict__["config"] = cfg

    def continued_config(self, new: Config, source: str = "the run") -> Config:
        """The resume rules: `new` may differ from this run's config in how it trains and samples only
        (`config.resume_config`); returns the config to continue with."""
        return resume_config(self.config, new, source)

    def worker(self, task_id: Optional[int]) -> "Run":
        """The run a worker writes: this one for the chief (`task_id` None), else its own folder inside it."""
        return self if task_id is None else Run(self.folder / WORKERS / str(task_id), self.name, self.flag)

    def logs(self, kind: str) -> Path:
        """The TensorBoard folder of `kind` ("train" or "validation")."""
        return self.folder / LOGS[kind]

    @property
    def cache(self) -> Path:
        """Where the corpus is decoded to, unless the job gives another folder."""
        return self.folder / CACHE

    # -- its data ----------------------------------------------------------------------------------
    def split(self) -> dict:
        """{"train": [files], "validation": [files], "skipped": {file: reason}} of data_split.json."""
        path = self.folder / SPLIT
        if not path.is_file():
            raise RunError(f"{self.flag} {self.name}: no {SPLIT} to find its training audio")
        return json.loads(path.read_text())

    def training_files(self) -> list[str]:
        return self.split()["train"]

    def held_out_files(self) -> list[str]:
        return self.split()["validation"]

    @property
    def has_split(self) -> bool:
        return (self.folder / SPLIT).is_file()

    def save_split(self, train: list[str], validation: list[str], skipped: dict) -> None:
        (self.folder / SPLIT).write_text(json.dumps({"train": train, "validation": validation, "skipped": skipped},
                                                    indent=1))

    # -- its weights -------------------------------------------------------------------------------
    @property
    def pretrained(self) -> bool:
        return (self.folder / WEIGHTS).is_file()

    @property
    def has_weights(self) -> bool:
        """Whether there is anything to load: a checkpoint, or a pretrained model's weights."""
        return self.pretrained or any((self.folder / CHECKPOINTS).glob("ckpt-*.index"))

    def describe_weights(self) -> str:
        """Where this run's weights would be, for a message saying they are not there."""
        return f"no {CHECKPOINTS}/ckpt-* and no {WEIGHTS}"

    def checkpoint_manager(self, checkpoint, keep: int):
        """tf.train.CheckpointManager of `checkpoint` in this run's checkpoints/, keeping the newest `keep`."""
        import tensorflow as tf

        return tf.train.CheckpointManager(checkpoint, self.folder / CHECKPOINTS, max_to_keep=keep)

    def checkpoints(self) -> list[str]:
        """Checkpoint prefixes, newest first (the manager's record, else the files present)."""
        import tensorflow as tf

        folder = self.folder / CHECKPOINTS
        state = tf.train.get_checkpoint_state(str(folder))
        listed = list(state.all_model_checkpoint_paths) if state else []
        present = {str(p.with_suffix("")) for p in folder.glob("ckpt-*.index")}
        # get_checkpoint_state already prefixes the folder; the name alone keeps a moved run readable
        prefixes = [str(folder / Path(p).name) for p in listed]
        prefixes += sorted(present - set(prefixes))
        return sorted(set(prefixes), key=lambda p: int(p.rsplit("-", 1)[1]), reverse=True)

    def restore_newest(self, restore: Callable[[str], object]) -> Optional[str]:
        """Calls `restore(prefix)` on the checkpoints, newest first, until one succeeds: a corrupt one is named
        in a warning and skipped. Returns the prefix restored; None if there is no checkpoint."""
        import tensorflow as tf

        errors = []
        for prefix in self.checkpoints():
            try:
                restore(prefix)
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
                errors.append(f"checkpoint {prefix} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
                logging.warning("%s; trying the one before", errors[-1])
                continue
            return prefix
        if errors:
            raise RunError(f"{self.flag} {self.name}: no intact checkpoint: " + "; ".join(errors))
        return None

    def restore_weights(self, network, averaged: bool = True) -> str:
        """Loads the newest intact checkpoint's weights into `network`: their moving average where the run kept
        one and `averaged`. A pretrained model's folder holds its averaged weights alone. Returns what was loaded."""
        variables = checkpoint_variables(network)
        if self.pretrained:
            return self._assign_package_weights(variables)
        import tensorflow as tf

        def restore(prefix):
            stored = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
            key = "ema" if averaged and any(k.startswith("ema/") for k in stored) else "model"
            tf.train.Checkpoint(**{key: variables}).restore(prefix).expect_partial().assert_existing_objects_matched()

        loaded = self.restore_newest(restore)
        if loaded is None:
            raise RunError(f"{self.flag} {self.name}: no checkpoint in {self.folder / CHECKPOINTS} and no {WEIGHTS}")
        return loaded

    def _assign_package_weights(self, variables: dict) -> str:
        """Assigns weights.npz ({path below the network: array}), each checked against the network's own."""
        path = self.folder / WEIGHTS
        stored = np.load(path)
        if set(stored.files) != set(variables):
            raise RunError(f"{path}: holds {len(stored.files)} weights, the config's network {len(variables)}; "
                           f"missing {sorted(set(variables) - set(stored.files))[:3]}")
        for name, var in variables.items():
            if tuple(stored[name].shape) != tuple(var.shape):
                raise RunError(f"{path}: {name} is {stored[name].shape}, the config's network expects {tuple(var.shape)}")
            var.assign(stored[name].astype(np.float32))
        return str(path)

    def check_finite(self, network, loaded: str) -> None:
        """Weights that are not finite can only make NaN audio: an export or package of them would succeed silently."""
        broken = [name for name, v in checkpoint_variables(network).items() if not np.isfinite(v.numpy()).all()]
        if broken:
            raise RunError(f"{self.flag} {self.name}: the weights of {loaded} are not finite ({broken[0]}"
                           + (f" and {len(broken) - 1} more" if len(broken) > 1 else "") + "); expected a run whose "
                           "weights are numbers: use an earlier checkpoint, or train again")

    def save_package(self, network, cfg: Config, dtype: str = "float16") -> None:
        """Makes this folder a pretrained model: its config `cfg`, and `network`'s weights alone as {path below the
        network: array} in `dtype` (weights.npz)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        np.savez(self.folder / WEIGHTS, **{name: np.asarray(var).astype(dtype)
                                           for name, var in checkpoint_variables(network).items()})
        cfg.save(self.folder / CONFIG)
        self.__dict__["config"] = cfg

    @property
    def weights_bytes(self) -> int:
        return (self.folder / WEIGHTS).stat().st_size

    # -- one writer ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Holds an exclusive lock on the folder while a process trains into it: a second one is refused with the
        holder's PID. The lock is the kernel's (flock), so a killed holder leaves none behind."""
        import fcntl

        created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / ".lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                raise RunError(f"--model_dir {self.folder}: another training process (PID {holder}) is writing this "
                               "run; wait for it to end, or train into another folder") from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            try:
                yield
            finally:
                path.unlink(missing_ok=True)  # while still held: nobody else can hold it between the two
                if created:  # a new run refused before it started leaves no folder (rmdir: only an empty one)
                    with contextlib.suppress(OSError):
                        self.folder.rmdir()
