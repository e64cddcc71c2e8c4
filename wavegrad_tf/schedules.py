"""Noise schedules: the paper's presets, user schedules from lists or files, and the per-step constants of
the sampler. NumPy only: configs, runtimes and the schedule search use them without TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from wavegrad_tf.bounded_yaml import read_yaml
from wavegrad_tf.errors import ConfigError, UserError


class ScheduleError(UserError):
    """A schedule that cannot be used; the message names it."""


def _fibonacci(n: int, b1: float = 1e-6, b2: float = 2e-6) -> np.ndarray:
    betas = [b1, b2]
    while len(betas) < n:
        betas.append(betas[-1] + betas[-2])
    return np.array(betas[:n])


# The paper's demo-page schedules. manual-6 is the hand-picked set lmnt-com/wavegrad ships; its last
# noise level (0.61) is low enough to start from N(0, I). ivanvovk's searched 6 steps end at 0.96 and
# scored worse here (README, "Measured on this machine").
PRESETS: dict[str, Callable[[], np.ndarray]] = {
    "linear-1000": lambda: np.linspace(1e-6, 0.01, 1000),
    "linear-50": lambda: np.linspace(1e-4, 0.05, 50),
    "fibonacci-25": lambda: _fibonacci(25),
    "manual-6": lambda: np.array([1e-4, 1e-3, 1e-2, 5e-2, 2e-1, 5e-1]),
}

Schedule = Union[str, Sequence[float], np.ndarray, os.PathLike]


def get_schedule(spec: Schedule) -> np.ndarray:
    """Betas (float64, [N]) from a preset name, a list of betas, or a .txt/.npy/.yaml/.json file."""
    if isinstance(spec, str) and spec in PRESETS:
        betas = PRESETS[spec]()
    elif isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.exists():
            raise ScheduleError(f"schedule {str(spec)!r}: expected one of {sorted(PRESETS)} or an existing file")
        betas = _read_schedule_file(path)
    else:
        betas = spec
    try:
        betas = np.asarray(betas, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # strings, mappings, ragged lists
        text = repr(spec)
        raise ScheduleError(f"schedule: expected a list of numbers (betas), got {text[:80]}"
                            + ("..." if len(text) > 80 else "")) from None
    if betas.ndim != 1 or betas.size == 0:
        raise ScheduleError(f"schedule: expected a non-empty 1-D list of betas, got shape {betas.shape}")
    if betas.size > MAX_BETAS:
        raise ScheduleError(f"schedule: {betas.size:,} betas; expected at most {MAX_BETAS:,}")
    if not np.all(np.isfinite(betas)) or np.any(betas <= 0) or np.any(betas >= 1):
        raise ScheduleError("schedule: every beta must be in (0, 1)")
    if np.any(betas < MIN_BETA):
        raise ScheduleError(f"schedule: betas below {MIN_BETA:g} add no noise a float can hold (the sampler would "
                            f"divide by zero); got {betas.min():g}")
    falls = np.flatnonzero(np.diff(betas) < 0)
    if falls.size:
        k = int(falls[0])
        raise ScheduleError(f"schedule: expected non-decreasing betas (more noise at every step), got {betas[k]:g} "
                            f"at step {k + 1} then {betas[k + 1]:g}")
    return betas


MAX_BETAS = 100_000
MIN_BETA = 1e-10


def _read_schedule_file(path: Path) -> np.ndarray:
    if path.is_dir():
        raise ScheduleError(f"schedule {path}: is a folder, expected a .txt, .npy or .yaml file of betas")
    if path.suffix == ".npy":
        try:
            betas = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ScheduleError(f"schedule file {path}: not a .npy array of numbers ({e})") from None
        if not isinstance(betas, np.ndarray) or not np.issubdtype(betas.dtype, np.number):
            raise ScheduleError(f"schedule file {path}: expected a .npy array of numbers (a .npz holds several)")
        return betas
    if path.suffix in (".yaml", ".yml", ".json"):
        try:
            data = read_yaml(path.read_text(encoding="utf-8", errors="replace"), f"schedule file {path}")
        except ConfigError as e:
            raise ScheduleError(str(e)) from None
        if isinstance(data, dict):
            data = data.get("betas")
        if not isinstance(data, list):
            raise ScheduleError(f"schedule file {path}: expected a list of betas or a mapping with 'betas'")
        try:
            return np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise ScheduleError(f"schedule file {path}: expected numbers, got {str(data)[:80]}") from None
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as e:
        raise ScheduleError(f"schedule file {path}: expected numbers, one per line ({e})") from None


def schedule_for(cfg, iterations: Optional[int] = None, schedule: Optional[Schedule] = None) -> np.ndarray:
    """The betas to sample a model of `cfg` with: the preset with `iterations` steps, a `schedule`, or the
    config's inference schedule. A discrete-index model samples only with its training schedule."""
    if iterations is not None and schedule is not None:
        raise ScheduleError("give --iterations or --schedule, not both")
    if iterations is not None:
        names = {len(get_schedule(n)): n for n in PRESETS}
        if iterations not in names:
            raise ScheduleError(f"--iterations {iterations}: no preset has that many steps "
                             f"(presets: {sorted(names)}); pass --schedule with your own betas")
        schedule = names[iterations]
    d = cfg.diffusion
    betas = get_schedule(schedule if schedule is not None else d.inference_schedule if d.continuous
                         else d.train_schedule)
    if not d.continuous and not np.array_equal(betas, get_schedule(d.train_schedule)):
        raise ScheduleError("a discrete-index model (diffusion.continuous: false) samples only with its "
                         f"training schedule ({d.train_schedule})")
    return betas


def noise_levels(betas: np.ndarray) -> np.ndarray:
    """l = [1, sqrt(alpha_bar_1), ..., sqrt(alpha_bar_N)]: the continuous noise level at each step boundary."""
    return np.concatenate([[1.0], np.sqrt(np.cumprod(1.0 - betas))])




def conditioning(betas: np.ndarray, continuous: bool) -> Optional[np.ndarray]:
    """What the model sees at each sampling step, when it is not the noise level: n / T for discrete models."""
    return None if continuous else np.arange(1, len(betas) + 1) / len(betas)


def sampler_coefficients(betas: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step constants of the paper's Algorithm 2, index n = 0..N-1 for steps 1..N."""
    alphas = 1.0 - betas
    alpha_bar = np.cumprod(alphas)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    return {
        "noise_level": np.sqrt(alpha_bar),
        "eps_scale": betas / np.sqrt(1.0 - alpha_bar),
        "inv_sqrt_alpha": 1.0 / np.sqrt(alphas),
        "sigma": np.sqrt(betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)),
    }
