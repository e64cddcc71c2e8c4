"""Vocode: python -m wavegrad_tf.infer --model_dir DIR --input in.wav|mel.npy --output out.wav.

A wav is analysed with the model's own mel front end and resynthesised; a .npy is a precomputed
log-mel [frames, n_mels] (e.g. from a TTS model) with the same feature settings. Any length is
vocoded in overlapping chunks, so memory stays bounded.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a script (the modules import each other)."""
    flags.DEFINE_string("model_dir", None, "A training run's folder (config.yaml + checkpoints/).", required=True)
    flags.DEFINE_string("input", None, "A .wav/.flac/.ogg file, or a .npy log-mel [frames, n_mels].", required=True)
    flags.DEFINE_string("output", None, "Output .wav path.", required=True)
    flags.DEFINE_integer("iterations", None, "Refinement steps: picks the preset schedule with this many steps.")
    flags.DEFINE_string("schedule", None, "Preset name (manual-6, fibonacci-25, linear-50, linear-1000) or a file "
                        "of betas; default: the config's inference_schedule.")
    flags.DEFINE_integer("seed", None, "Noise seed, for reproducible output.")
    flags.DEFINE_integer("chunk_frames", 400, "Mel frames vocoded at a time (bounds memory).")


def load_model(model_dir: str | os.PathLike):
    """(config, WaveGrad with the latest checkpoint's weights) of a training run."""
    import tensorflow as tf

    from wavegrad_tf.config import load_config
    from wavegrad_tf.model import build_model, checkpoint_variables

    model_dir = Path(model_dir)
    config_path = model_dir / "config.yaml"
    if not config_path.exists():
        raise FileNotFoundError(f"--model_dir {model_dir}: no config.yaml (is it a training run's folder?)")
    cfg = load_config(config_path)
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"--model_dir {model_dir}: no checkpoint in {model_dir / 'checkpoints'}")
    model = build_model(cfg)
    # The weights' moving average where the run kept one: it is what validation scored.
    averaged = any(k.startswith("ema/") for k in tf.train.load_checkpoint(latest).get_variable_to_shape_map())
    status = tf.train.Checkpoint(**{"ema" if averaged else "model": checkpoint_variables(model)}).restore(
        latest).expect_partial()
    status.assert_existing_objects_matched()
    return cfg, model


def read_input(path: str | os.PathLike, sample_rate: int, mel_fn: Callable[[np.ndarray], np.ndarray],
               n_mels: Optional[int] = None) -> tuple[np.ndarray, Optional[int]]:
    """(log-mel [frames, n_mels], audio length or None) from a .npy log-mel or an audio file analysed
    with `mel_fn`; every CLI (Keras, LiteRT, TF Serving client) reads --input through this."""
    from wavegrad_tf.audio import load_audio

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--input {path}: no such file")
    if path.suffix == ".npy":
        mel = np.load(path)
        return (mel if n_mels is None else check_mel(mel, n_mels, str(path))), None
    audio = load_audio(path, sample_rate)
    return np.asarray(mel_fn(audio)), len(audio)


def schedule_for(cfg, iterations: Optional[int] = None, schedule=None) -> np.ndarray:
    from wavegrad_tf import diffusion

    if iterations is not None and schedule is not None:
        raise ValueError("give --iterations or --schedule, not both")
    if iterations is not None:
        names = {len(diffusion.get_schedule(n)): n for n in diffusion.PRESETS}
        if iterations not in names:
            raise ValueError(f"--iterations {iterations}: no preset has that many steps "
                             f"(presets: {sorted(names)}); pass --schedule with your own betas")
        schedule = names[iterations]
    d = cfg.diffusion
    betas = diffusion.get_schedule(schedule if schedule is not None else
                                   d.inference_schedule if d.continuous else d.train_schedule)
    if not d.continuous and not np.array_equal(betas, diffusion.get_schedule(d.train_schedule)):
        raise ValueError("a discrete-index model (diffusion.continuous: false) samples only with its "
                         f"training schedule ({d.train_schedule})")
    return betas


def check_mel(mel: np.ndarray, n_mels: int, source: str = "mel") -> np.ndarray:
    """A [frames, n_mels] float32 array, or a ValueError saying what was expected."""
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise ValueError(f"{source}: expected a 2-D log-mel [frames, {n_mels}], got shape {mel.shape}")
    if mel.shape[1] != n_mels:
        hint = " (it looks transposed: save it as [frames, n_mels])" if mel.shape[0] == n_mels else ""
        raise ValueError(f"{source}: expected {n_mels} mel bins in the last axis, got shape {mel.shape}{hint}")
    if mel.shape[0] == 0:
        raise ValueError(f"{source}: expected at least one frame, got 0")
    if not np.issubdtype(mel.dtype, np.floating):
        raise ValueError(f"{source}: expected a float array, got {mel.dtype}")
    if not np.all(np.isfinite(mel)):
        raise ValueError(f"{source}: contains NaN or inf")
    return mel.astype(np.float32)


def _fade_in(overlap: int) -> np.ndarray:
    """0 over the first quarter of the overlap, linear to 1 over its middle half: chunk edges get no weight."""
    return np.clip((np.arange(overlap) + 0.5 - overlap / 4) / (overlap / 2), 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def noise_predictor(model):
    """The model's eps(y, mel, noise level) as one tf.function per model, so repeated calls reuse its traces."""
    import tensorflow as tf

    return tf.function(lambda y, m, l: model([y, m, l], training=False), reduce_retracing=True, autograph=False)


def vocode(model, cfg, mel: np.ndarray, betas: np.ndarray, seed: Optional[int] = None,
           chunk_frames: int = 400, overlap_frames: int = 32) -> np.ndarray:
    """Audio [frames * hop] for a log-mel [frames, n_mels], in overlapping chunks of `chunk_frames`.

    Noise is keyed by absolute sample position, so overlapping chunks see the same noise and
    agree away from their edges; the seams are crossfaded where both are away from an edge.
    """
    from wavegrad_tf import diffusion

    mel = check_mel(mel, cfg.audio.n_mels)
    hop = cfg.audio.hop_length
    noise = diffusion.PositionalNoise(seed)
    eps = noise_predictor(model)
    conditioning = diffusion.model_conditioning(betas, cfg.diffusion.continuous)

    def synthesize(begin, end):
        chunk = mel[None, begin:end]
        return diffusion.sample(eps, chunk, hop, betas, noise, start_sample=begin * hop, conditioning=conditioning,
                                std=diffusion.prior_std(chunk, cfg)).numpy()[0]

    return chunked(len(mel), hop, synthesize, chunk_frames, overlap_frames)


def chunked(frames: int, hop: int, synthesize: Callable[[int, int], np.ndarray], chunk_frames: int = 400,
            overlap_frames: int = 32) -> np.ndarray:
    """Audio [frames * hop] from `synthesize(begin, end)` over overlapping frame ranges, crossfaded.

    With position-keyed noise, overlapping chunks agree away from their edges; the crossfade uses
    only the middle half of each overlap, so chunk edges get no weight.
    """
    if chunk_frames <= 2 * overlap_frames:
        raise ValueError(f"chunk_frames ({chunk_frames}) must exceed twice the overlap ({overlap_frames})")
    fade = _fade_in(overlap_frames * hop)
    out = np.zeros(frames * hop, np.float32)
    for begin in range(0, frames, chunk_frames - overlap_frames):
        end = min(begin + chunk_frames, frames)
        audio = np.array(synthesize(begin, end), np.float32)
        if begin > 0:
            audio[:len(fade)] *= fade
        if end < frames:
            audio[-len(fade):] *= 1.0 - fade
        out[begin * hop:end * hop] += audio
        if end == frames:
            break
    return out


def main(argv):
    del argv
    from wavegrad_tf.audio import save_wav
    from wavegrad_tf.mel import log_mel_spectrogram

    cfg, model = load_model(FLAGS.model_dir)
    betas = schedule_for(cfg, FLAGS.iterations, FLAGS.schedule)
    mel, length = read_input(FLAGS.input, cfg.audio.sample_rate,
                             lambda audio: log_mel_spectrogram(audio, cfg.audio).numpy(), cfg.audio.n_mels)
    out = vocode(model, cfg, mel, betas, FLAGS.seed, FLAGS.chunk_frames)
    save_wav(FLAGS.output, out[:length], cfg.audio.sample_rate)
    print(f"wrote {FLAGS.output}: {len(out[:length]) / cfg.audio.sample_rate:.2f} s, {len(betas)} iterations")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    app.run(main)
