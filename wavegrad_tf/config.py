"""Typed, validated configuration: dataclasses loaded from YAML presets in `configs/`."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import typing
from pathlib import Path
from typing import Any, Optional

import yaml

from wavegrad_tf import schedules
from wavegrad_tf.bounded_yaml import read_yaml
from wavegrad_tf.errors import ConfigError, UserError
from wavegrad_tf.hardware import TRAINING_PRECISIONS

# Presets live in the repository's top-level `configs/`; a wheel install carries them in share/.
_CONFIG_DIRS = (Path(__file__).resolve().parent.parent / "configs",
                Path(sys.prefix) / "share" / "wavegrad_tf" / "configs")
CONFIG_DIR = next((d for d in _CONFIG_DIRS if d.is_dir()), _CONFIG_DIRS[0])


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Waveform and log-mel feature settings (shared by training, inference and export)."""

    sample_rate: int = 24000
    n_mels: int = 128
    # Frame t is centred on sample t * hop (reflect padding of win_length / 2); the window is zero-padded to n_fft.
    hop_length: int = 300
    win_length: int = 1200
    n_fft: int = 2048
    fmin: float = 20.0
    fmax: float = 12000.0
    # Magnitude (1) or power (2) spectrogram before the mel filterbank.
    power: float = 1.0
    # features = (ln(max(mel, log_floor)) - mel_offset) / mel_scale
    log_floor: float = 1e-5
    mel_offset: float = 0.0
    mel_scale: float = 1.0

    def validate(self, prefix: str = "audio") -> None:
        for name in ("sample_rate", "n_mels", "hop_length", "win_length", "n_fft"):
            _positive(f"{prefix}.{name}", getattr(self, name))
        for name in ("power", "log_floor", "mel_scale"):
            _positive(f"{prefix}.{name}", getattr(self, name))
        if self.win_length > self.n_fft:
            raise ConfigError(
                f"{prefix}.win_length: expected <= n_fft ({self.n_fft}), got {self.win_length}"
            )
        if self.win_length % 2:
            raise ConfigError(f"{prefix}.win_length: expected an even number, got {self.win_length}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(
                f"{prefix}.fmin/fmax: expected 0 <= fmin < fmax <= sample_rate/2 "
                f"({self.sample_rate / 2:g}), got fmin={self.fmin:g}, fmax={self.fmax:g}"
            )

    def check_stft(self, use: str) -> None:
        """The STFT of the projections and of SpecGrad (`wavegrad_tf.spectral`) frames audio in whole hops: `use`
        needs the window to span a whole number of them."""
        if self.win_length % self.hop_length:
            raise ConfigError(f"audio.win_length: {use} works in the STFT, which needs a multiple of hop_length "
                              f"({self.hop_length}), got {self.win_length}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """WaveGrad layout. Lists are ordered as data flows: UBlocks from the mel up, DBlocks from the wave down."""

    # Upsampling factor of each UBlock; their product must equal audio.hop_length.
    factors: tuple[int, ...] = (5, 5, 3, 2, 2)
    mel_channels: int = 768
    upsample_channels: tuple[int, ...] = (512, 512, 256, 128, 128)
    upsample_dilations: tuple[tuple[int, ...], ...] = (
        (1, 2, 1, 2), (1, 2, 1, 2), (1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8))
    # Channels of the waveform path at each resolution, finest first (the first is the input conv).
    downsample_channels: tuple[int, ...] = (32, 128, 128, 256, 512)
    # WaveGrad Large: a same-width, non-resampling UBlock after every UBlock.
    extra_blocks: bool = False
    # Scale C of the noise-level positional encoding (paper: 5000).
    noise_scale: float = 5000.0
    # The network standardises its conditioning, (mel - mel_mean) / mel_std, so ln-mel features
    # (about -5 +- 2.5 on speech) reach the first layer near zero mean and unit scale.
    mel_mean: float = 0.0
    mel_std: float = 1.0
    # Weight initialisation: "glorot" (Keras' default) or "fan_in" (variance-preserving through the
    # LeakyReLUs, each UBlock half's last conv scaled down: the untrained output has std about 1).
    init: str = "glorot"

    def validate(self, hop_length: int, prefix: str = "model") -> None:
        n = len(self.factors)
        if n == 0:
            raise ConfigError(f"{prefix}.factors: expected at least one factor")
        for i, f in enumerate(self.factors):
            _positive(f"{prefix}.factors[{i}]", f)
        if math.prod(self.factors) != hop_length:
            raise ConfigError(
                f"{prefix}.factors: product {math.prod(self.factors)} of {list(self.factors)} "
                f"must equal audio.hop_length ({hop_length})"
            )
        for name, expected in (("upsample_channels", n), ("upsample_dilations", n),
                               ("downsample_channels", n)):
            got = len(getattr(self, name))
            if got != expected:
                raise ConfigError(
                    f"{prefix}.{name}: expected {expected} entries (one per factor), got {got}")
        for name in ("upsample_channels", "downsample_channels"):
            for i, c in enumerate(getattr(self, name)):
                _positive(f"{prefix}.{name}[{i}]", c)
        for i, dils in enumerate(self.upsample_dilations):
            if len(dils) != 4 or any(d <= 0 for d in dils):
                raise ConfigError(
                    f"{prefix}.upsample_dilations[{i}]: expected 4 positive dilations, got {list(dils)}")
        _positive(f"{prefix}.mel_channels", self.mel_channels)
        _positive(f"{prefix}.noise_scale", self.noise_scale)
        _positive(f"{prefix}.mel_std", self.mel_std)
        if self.init not in ("glorot", "fan_in"):
            raise ConfigError(f"{prefix}.init: expected glorot or fan_in, got {self.init!r}")


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedules for training and for sampling."""

    # Continuous noise-level conditioning (the paper's main variant) or the discrete-index ablation.
    continuous: bool = True
    # Training schedule: a preset name, a list of betas, or a path to a .txt/.npy/.yaml file of betas.
    train_schedule: Any = "linear-1000"
    # Default sampling schedule for `infer` and validation audio.
    inference_schedule: Any = "manual-6"
    # The noise's distribution (wavegrad_tf.priors): "standard" N(0, I) (the paper); "priorgrad" (Lee et al.
    # 2022), N(0, diag(std^2)) with std per mel frame from its energy, so quiet frames start nearly clean;
    # "specgrad" (Koizumi et al. 2022), PriorGrad's level shaped in frequency by each frame's spectral envelope.
    prior: str = "standard"
    # PriorGrad: std = clip(frame energy / prior_energy_max, prior_std_min, 1), frame energy being
    # sqrt(sum of the linear mel). prior_energy_max is measured on the training data when left empty.
    prior_std_min: float = 0.1
    prior_energy_max: Optional[float] = None
    # SpecGrad: cepstral coefficients kept of each frame's envelope (the paper's lifter order).
    specgrad_lifter: int = 24
    # What the sampler makes its estimate consistent with (wavegrad_tf.diffusion.Sampler): "none"; "mel", the
    # output's band energies rescaled to the conditioning mel; "gla", GLA-Grad (Liu et al. 2024): the clean
    # estimate of each of the first consistency_steps steps replaced by its Griffin-Lim projection onto the
    # magnitude the mel implies; "gla_once", GLA-Grad++ (2025): that projection computed once, at the first step.
    consistency: str = "mel"
    # Projection iterations; default: 8 for mel, 32 for gla and gla_once (GLA-Grad's).
    consistency_iterations: Optional[int] = None
    consistency_steps: int = 3

    def validate(self, prefix: str = "diffusion") -> None:
        for name in ("train_schedule", "inference_schedule"):
            try:
                schedules.get_schedule(getattr(self, name))
            except ValueError as e:
                raise ConfigError(f"{prefix}.{name}: {e}") from None
        if self.prior not in PRIORS:
            raise ConfigError(f"{prefix}.prior: expected one of {list(PRIORS)}, got {self.prior!r}")
        if not 0 < self.prior_std_min <= 1:
            raise ConfigError(f"{prefix}.prior_std_min: expected in (0, 1], got {self.prior_std_min}")
        if self.prior_energy_max is not None:
            _positive(f"{prefix}.prior_energy_max", self.prior_energy_max)
        _positive(f"{prefix}.specgrad_lifter", self.specgrad_lifter)
        if self.consistency not in Consistency.KINDS:
            raise ConfigError(f"{prefix}.consistency: expected one of {list(Consistency.KINDS)}, "
                              f"got {self.consistency!r}")
        if self.consistency_iterations is not None:
            _positive(f"{prefix}.consistency_iterations", self.consistency_iterations)
            if self.consistency_iterations > Consistency.MAX_ITERATIONS:
                raise ConfigError(f"{prefix}.consistency_iterations: expected at most {Consistency.MAX_ITERATIONS}, "
                                  f"got {self.consistency_iterations}")
        _positive(f"{prefix}.consistency_steps", self.consistency_steps)


PRIORS = ("standard", "priorgrad", "specgrad")


@dataclasses.dataclass(frozen=True)
class ConsistencyKind:
    """One thing the sampler can make its estimate consistent with (`wavegrad_tf.diffusion.Sampler`)."""

    iterations: int  # projection iterations by default
    per_step: bool  # GLA-Grad's: the clean estimate of the first steps projected, rather than the output
    every_step: bool  # of those steps, every one (gla) or the first alone (gla_once)
    help: str


CONSISTENCY_KINDS = {
    "none": ConsistencyKind(0, False, False, "the network alone"),
    "mel": ConsistencyKind(8, False, False, "the output's band energies rescaled to the mel"),
    "gla": ConsistencyKind(32, True, True, "GLA-Grad: Griffin-Lim projections in the first steps"),
    "gla_once": ConsistencyKind(32, True, False, "GLA-Grad++: one projection, at the first step"),
}


@dataclasses.dataclass(frozen=True)
class Consistency:
    """What the sampler makes its estimate consistent with (`diffusion.consistency` in the config, which explains
    each kind). `steps`: how many of the first, noisiest steps GLA-Grad's projection replaces the clean estimate in."""

    kind: str = "none"
    iterations: int = 0
    steps: int = 0

    KINDS: typing.ClassVar[dict] = CONSISTENCY_KINDS
    # Each iteration is two STFTs of the whole output: past this, vocoding takes hours for no measured gain
    # (GLA-Grad's own setting is 32).
    MAX_ITERATIONS: typing.ClassVar[int] = 1000

    @classmethod
    def of(cls, cfg, kind: Optional[str] = None, iterations: Optional[int] = None,
           steps: Optional[int] = None) -> "Consistency":
        """The config's choice, each part replaced where given (the command-line flags)."""
        d = cfg.diffusion
        kind = kind or d.consistency
        if kind not in cls.KINDS:
            raise UserError(f"--consistency: expected one of {list(cls.KINDS)}, got {kind!r}")
        iterations = iterations if iterations is not None else d.consistency_iterations
        iterations = cls.KINDS[kind].iterations if iterations is None else iterations
        steps = d.consistency_steps if steps is None else steps
        if kind != "none":
            cfg.audio.check_stft(f"--consistency {kind}")
        if kind == "none":
            return cls()
        return cls(kind, iterations, steps if cls.KINDS[kind].per_step else 0).validate("--consistency")

    def validate(self, source: str = "consistency") -> "Consistency":
        """Itself, if a sampler can run it; else a UserError naming the field: of wavegrad.json (`source`
        "consistency": consistency.kind, ...) or of the command line ("--consistency": --consistency_iterations, ...)."""
        flag = source.startswith("--")
        field = (lambda name: source if name == "kind" else f"{source}_{name}") if flag else (
            lambda name: f"{source}.{name}")
        if self.kind not in self.KINDS:
            raise UserError(f"{field('kind')}: expected one of {list(self.KINDS)}, got {self.kind!r}")
        projects, per_step = self.kind != "none", self.KINDS[self.kind].per_step
        for name, value, least, most in (("iterations", self.iterations, int(projects), self.MAX_ITERATIONS),
                                         ("steps", self.steps, int(per_step), 1000)):
            if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
                raise UserError(f"{field(name)}: expected a whole number from {least} to {most}, got {value!r}")
        return self

    def describe(self) -> str:
        if self.kind == "none":
            return "no consistency projection"
        where = f" in the first {self.steps} steps" if self.steps else " of the output"
        return f"{self.kind} consistency, {self.iterations} iterations{where}"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # global, across all replicas
    # Peak learning rate, reached linearly over warmup_steps, then halved every lr_half_life steps
    # (0: constant).
    learning_rate: float = 2e-4
    warmup_steps: int = 0
    lr_half_life: int = 0
    grad_clip_norm: float = 1.0
    segment_length: int = 7200  # samples; a multiple of hop_length
    # Keras dtype policy, or "auto": chosen by the machine (wavegrad_tf.hardware.training_precision), and the
    # choice recorded in the run's config.yaml.
    precision: str = "auto"
    # Exponential moving average of the weights, used by validation, inference and export (0: off).
    ema_decay: float = 0.0
    # Ramp the average's decay up from 0.1, so it forgets a random initialisation; --init_from turns it off,
    # since a fine-tuning's average starts from trained, already averaged weights.
    ema_ramp: bool = True
    # Compile the training step with XLA. Measured on an AVX2 CPU in float32 (docs/training.md): Base's step
    # 17 % faster, the demo network's 50 % slower (its small convolutions gain nothing from fusion).
    jit_compile: bool = False
    # Every so many steps: a checkpoint (the newest keep_checkpoints kept), a log line, a validation (also at the
    # end of a run; validate_every 0: never).
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 100
    validate_every: int = 5000
    validation_fraction: float = 0.05
    seed: int = 1234
    # InferGrad (Chen et al. 2022): the weight of a second loss, between the few-step sampler's output and the
    # recording, the sampler run from the prior's noise through one of `infer_schedules` (in turn, a step each)
    # with gradients through every step (0: WaveGrad's noise-prediction loss alone). The loss: multi-resolution
    # STFT distance + infer_waveform_weight x waveform L1 (`wavegrad_tf.losses.output_loss`).
    infer_loss_weight: float = 0.0
    # Schedules (presets, lists of betas or files) the loss unrolls; empty: diffusion.inference_schedule.
    infer_schedules: Any = ()
    # Items of each replica's batch unrolled: each costs a forward and a backward pass per sampler step.
    infer_items: int = 4
    infer_waveform_weight: float = 1.0

    def __post_init__(self):
        # Held as tuples, as every list of a config is: a config read back equals the one written.
        if isinstance(self.infer_schedules, (list, tuple)):
            object.__setattr__(self, "infer_schedules", tuple(
                tuple(s) if isinstance(s, list) else s for s in self.infer_schedules))

    def validate(self, hop_length: int, prefix: str = "train") -> None:
        for name in ("batch_size", "learning_rate", "grad_clip_norm", "segment_length",
                     "checkpoint_every", "keep_checkpoints", "log_every"):
            _positive(f"{prefix}.{name}", getattr(self, name))
        for name in ("warmup_steps", "lr_half_life", "validate_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{prefix}.{name}: expected >= 0, got {getattr(self, name)}")
        if self.precision not in TRAINING_PRECISIONS:
            raise ConfigError(f"{prefix}.precision: expected one of {list(TRAINING_PRECISIONS)}, got {self.precision!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"{prefix}.ema_decay: expected in [0, 1), got {self.ema_decay}")
        if self.segment_length % hop_length:
            raise ConfigError(
                f"{prefix}.segment_length: expected a multiple of audio.hop_length ({hop_length}), "
                f"got {self.segment_length}")
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(
                f"{prefix}.validation_fraction: expected in [0, 1), got {self.validation_fraction}")
        for name in ("infer_loss_weight", "infer_waveform_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{prefix}.{name}: expected >= 0, got {getattr(self, name)}")
        if not 1 <= self.infer_items <= self.batch_size:
            raise ConfigError(f"{prefix}.infer_items: expected from 1 to batch_size ({self.batch_size}), "
                              f"got {self.infer_items}")
        if not isinstance(self.infer_schedules, (list, tuple)):
            raise ConfigError(f"{prefix}.infer_schedules: expected a list of schedules, got {_show(self.infer_schedules)}")
        for i, schedule in enumerate(self.infer_schedules):
            try:
                if len(schedules.get_schedule(schedule)) > MAX_INFER_STEPS:
                    raise ValueError(f"more than {MAX_INFER_STEPS} steps: the loss unrolls every one")
            except ValueError as e:
                raise ConfigError(f"{prefix}.infer_schedules[{i}]: {e}") from None


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "custom"
    audio: AudioConfig = AudioConfig()
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    train: TrainConfig = TrainConfig()

    def validate(self) -> "Config":
        _check_finite(self.to_dict())
        self.audio.validate()
        self.model.validate(self.audio.hop_length)
        self.diffusion.validate()
        d = self.diffusion
        if d.consistency != "none" or d.prior == "specgrad":
            self.audio.check_stft(f"diffusion.{'prior' if d.prior == 'specgrad' else 'consistency'}")
        self.train.validate(self.audio.hop_length)
        if self.train.infer_loss_weight and not d.continuous:
            raise ConfigError("train.infer_loss_weight: a discrete-index model (diffusion.continuous: false) samples "
                              "only with its training schedule, which is too long to unroll; expected 0")
        return self

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | os.PathLike) -> None:
        """Written whole or not at all (a temporary file renamed over the old one)."""
        tmp = Path(f"{path}.tmp")
        with open(tmp, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
        os.replace(tmp, path)


MAX_INFER_STEPS = 50  # InferGrad unrolls few steps (the paper: 2 to 6); each holds a network's activations


# What a resumed run may change: how it trains and samples, not the network, its features or its noise.
RESUMABLE = ("name", "train.", "diffusion.inference_schedule", "diffusion.consistency")


def resume_config(stored: Config, new: Config, source: str = "the run") -> Config:
    """The config to continue `source`'s weights with (a resumed run, or a fine-tuning's starting model): `new`,
    where it differs from `stored` only in RESUMABLE fields (PriorGrad's measured normaliser kept). Any other
    difference is a ConfigError naming each field with its old and new value."""
    if new.diffusion.prior_energy_max is None:
        new = dataclasses.replace(new, diffusion=dataclasses.replace(
            new.diffusion, prior_energy_max=stored.diffusion.prior_energy_max))
    refused = [line for line in changes(stored, new) if not line.startswith(RESUMABLE)]
    if refused:
        raise ConfigError(f"{source} was trained with other network, feature or noise settings; continuing its "
                          "weights would change " + "; ".join(refused) + " (train a new run, or keep the settings)")
    return new


def changes(stored: Config, new: Config) -> list[str]:
    """Every field `new` changes, as "field: old -> new" lines."""
    old, now = _flatten(stored.to_dict()), _flatten(new.to_dict())
    return [f"{k}: {old.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(old) | set(now)) if old.get(k) != now.get(k)]


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _positive(field: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{field}: expected a positive number, got {value!r}")


def _check_finite(value, field: str = "") -> None:
    """Every number in a config is finite: NaN compares false with every bound, so a range check alone lets it by."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{field}.{key}" if field else key)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, f"{field}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{field}: expected a finite number, got {value!r}")


def _plain(x):
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _show(value, limit: int = 80) -> str:
    """A value for an error message, cut short: a list from a YAML file can hold 100,000 values."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def echo(text: str, limit: int = 80) -> str:
    """What the user typed, for a one-line message: as typed if printable, else quoted with escapes; cut short."""
    text = str(text)
    shown = text if text.isprintable() else repr(text)
    return shown if len(shown) <= limit else f"{shown[:limit]}..."


def _coerce(field: str, tp, value):
    """Converts a YAML value to the annotated type, or raises ConfigError naming the field."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{field}: expected a mapping, got {_show(value)}")
        return _build(tp, value, field)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{field}: expected a list, got {_show(value)}")
        args = typing.get_args(tp)
        item_tp = args[0]
        return tuple(_coerce(f"{field}[{i}]", item_tp, v) for i, v in enumerate(value))
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _coerce(field, [a for a in typing.get_args(tp) if a is not type(None)][0], value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{field}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{field}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 2e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: expected a number, got {_show(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{field}: expected a finite number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{field}: expected a string, got {_show(value)}")
        return value
    raise ConfigError(f"{field}: unsupported type {tp}")


def _build(cls, data: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"{where}{unknown[0]}: unknown key (expected one of: {', '.join(sorted(fields))})")
    kwargs = {k: _coerce(f"{prefix}.{k}" if prefix else k, hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _read_text(path: Path, what: str) -> str:
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a {what} file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a {what} file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from None


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if path.resolve() in seen:
        raise ConfigError(f"{path}: extends itself (through {' -> '.join(str(p) for p in seen)})")
    data = read_yaml(_read_text(path, "YAML config"), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    # A preset may start from another one: `extends: base`.
    parent = data.pop("extends", None)
    if parent is not None:
        data = _merge(_read_yaml(_resolve(parent), seen + (path.resolve(),)), data)
    return data


def _resolve(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        return p
    preset = CONFIG_DIR / f"{name_or_path}.yaml"
    if not preset.exists():
        raise ConfigError(f"unknown config {name_or_path!r}: expected a YAML path or one of {presets()}")
    return preset


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.batch_size=8' -> (['train', 'batch_size'], 8); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--override {echo(text)}: expected section.key=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), read_yaml(value, f"--override {echo(text)}")


def load_config(name_or_path: str | os.PathLike = "base", overrides: Optional[list[str]] = None) -> Config:
    """Loads a preset by name (`base`, `large`, `ljspeech`, `demo`) or a YAML file, then applies overrides."""
    path = _resolve(name_or_path)
    data = _read_yaml(path)
    data.setdefault("name", path.stem)
    for text in overrides or []:
        keys, value = parse_override(text)
        node = value
        for k in reversed(keys):
            node = {k: node}
        data = _merge(data, node)
    try:
        return _build(Config, data, "").validate()
    except ConfigError as e:
        # Named by where the bad value came from: an override, else the file.
        given = [text for text in overrides or [] if str(e).startswith(text.split("=", 1)[0].strip() + ":")]
        raise ConfigError(f"{f'--override {echo(given[-1])}' if given else path}: {e}") from None
