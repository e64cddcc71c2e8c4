"""Training data: a folder of audio or an LJSpeech-style metadata.csv -> cached clips -> tf.data crops.

Each usable file is decoded once (mixed down, resampled), reflect-padded by win_length / 2 and
cached as raw int16 pieces of at most PIECE_SECONDS, so a crop reads a small file with pure TF ops
(no Python in the input pipeline). A training example is a random hop-aligned crop of
`segment_length` samples plus its mel frames, computed from the crop's own context so they equal
the full-clip features, noised by the forward process (Chen et al. 2020, Alg. 1) at a drawn level. Bad files are
skipped, counted and logged, never fatal.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import logging

from wavegrad_tf import hardware, mel, priors, schedules
from wavegrad_tf.audio import AudioError, check_audio, list_audio_files, load_audio
from wavegrad_tf.config import Config

PIECE_SECONDS = 30


@dataclasses.dataclass
class Clip:
    """One cached piece of a source file: `num_samples` of audio plus win_length / 2 context each side."""

    source: str
    cache: str
    num_samples: int


@dataclasses.dataclass
class Corpus:
    clips: list[Clip]
    skipped: dict[str, str]  # path -> "reason (detail)"

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for reason in self.skipped.values():
            tag = reason.split(" ")[0]
            counts[tag] = counts.get(tag, 0) + 1
        usable = len({c.source for c in self.clips})
        tags = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
        return f"{usable} of {usable + len(self.skipped)} files usable" + (f"; skipped {len(self.skipped)}: {tags}" if tags else "")


def _cache_stem(path: Path, cfg: Config, cache_dir: Path) -> Path:
    st = path.stat()
    key = (f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{cfg.audio.sample_rate}|{cfg.audio.win_length}"
           f"|{PIECE_SECONDS}")
    return cache_dir / f"{path.stem[:40]}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def _prepare_one(path: Path, cfg: Config, cache_dir: Path) -> list[Clip]:
    if not path.exists():
        raise AudioError(path, "missing")
    stem = _cache_stem(path, cfg, cache_dir)
    index = stem.with_suffix(".json")
    if index.exists():  # pieces are named relative to the index, so a copied or moved cache still works
        return [Clip(c["source"], str(index.parent / Path(c["cache"]).name), c["num_samples"])
                for c in json.loads(index.read_text())]
    audio = load_audio(path, cfg.audio.sample_rate)
    check_audio(audio, path, cfg.train.segment_length)
    pad = cfg.audio.win_length // 2
    padded = (np.clip(np.pad(audio, pad, mode="reflect"), -1, 1) * 32767).astype("<i2")
    piece = max(PIECE_SECONDS * cfg.audio.sample_rate, cfg.train.segment_length)
    clips = []
    for k, begin in enumerate(range(0, len(audio), piece)):
        n = min(piece, len(audio) - begin)
        if n < cfg.train.segment_length and clips:
            break  # a short tail adds no crop position the previous pieces lack much of
        cache = Path(f"{stem}-{k}.pcm")
        cache.write_bytes(padded[begin:begin + n + 2 * pad].tobytes())
        clips.append(Clip(str(path.resolve()), str(cache), n))
    # Written last and atomically: a crash or a concurrent worker never leaves a partial entry.
    tmp = index.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([{**dataclasses.asdict(c), "cache": Path(c.cache).name} for c in clips]))
    os.replace(tmp, index)
    return clips


def prepare_corpus(data_dir: str | os.PathLike, cfg: Config, cache_dir: str | os.PathLike,
                   workers: Optional[int] = None) -> Corpus:
    """Decodes and caches every file in parallel; returns the usable clips and the skipped files."""
    files = list_audio_files(data_dir)
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    clips, skipped = [], {}
    with concurrent.futures.ThreadPoolExecutor(workers or min(8, hardware.usable_cpus())) as pool:
        for path, future in [(p, pool.submit(_prepare_one, p, cfg, cache_dir)) for p in files]:
            try:
                clips.extend(future.result())
            except AudioError as e:
                skipped[str(path)] = e.description
                logging.info("skipping %s", e)  # the caller reports them (train prints each)
    corpus = Corpus(clips, skipped)
    logging.info("data: %s", corpus.summary())
    return corpus


def split(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """(train, validation): a seeded, reproducible hold-out of `fraction` of the source files (at least one)."""
    sources = sorted({c.source for c in clips})
    if fraction <= 0 or len(sources) < 2:
        return list(clips), []
    order = np.random.default_rng(seed).permutation(len(sources))
    held_out = {sources[i] for i in order[:max(1, int(round(fraction * len(sources))))]}
    return [c for c in clips if c.source not in held_out], [c for c in clips if c.source in held_out]


def read_window(cache, start_frame, cfg: Config):
    """Samples [start * hop - win / 2, start * hop + segment + win / 2) of a cached piece (TF ops)."""
    samples = tf.io.decode_raw(tf.io.read_file(cache), tf.int16, little_endian=True)
    begin = tf.cast(start_frame, tf.int32) * cfg.audio.hop_length
    window = samples[begin:begin + cfg.train.segment_length + cfg.audio.win_length]
    return tf.cast(window, tf.float32) / 32767.0


def crop_features(window, cfg: Config):
    """(audio [.., segment], log-mel [.., segment / hop, n_mels]) from context windows."""
    pad = cfg.audio.win_length // 2
    seg = cfg.train.segment_length
    audio = window[..., pad:pad + seg]
    features = mel.log_mel_spectrogram(window, cfg.audio, center=False)[..., :seg // cfg.audio.hop_length, :]
    return audio, features


def energy_max(clips: list[Clip], cfg: Config) -> float:
    """The largest frame energy (`mel.frame_energy`) over the clips: PriorGrad's normaliser."""
    top = 0.0
    for clip in clips:
        window = tf.cast(tf.io.decode_raw(tf.io.read_file(clip.cache), tf.int16), tf.float32) / 32767.0
        energy = mel.frame_energy(mel.log_mel_spectrogram(window, cfg.audio, center=False), cfg.audio)
        top = max(top, float(tf.reduce_max(energy)))
    return top


def infer_schedules(cfg: Config) -> list:
    """The betas of each schedule InferGrad's loss unrolls (`train.infer_schedules`, else the inference schedule)."""
    return [schedules.get_schedule(s) for s in cfg.train.infer_schedules or [cfg.diffusion.inference_schedule]]


def add_noise(audio, noise, noise_level):
    """y_noisy = sqrt(a) * y0 + sqrt(1 - a) * eps, with sqrt(a) = noise_level (per batch item)."""
    level = tf.reshape(tf.cast(noise_level, audio.dtype), [-1, 1])
    return level * audio + tf.sqrt(1.0 - tf.square(level)) * noise


def draw_noise_level(seed, batch_size: int, levels: np.ndarray, continuous: bool):
    """Training noise level and conditioning (what the model sees) for each item: (noise_level, conditioning).

    Continuous: a segment s ~ U{1..T}, then sqrt(a) ~ U(l[s], l[s-1]); the model sees sqrt(a).
    Discrete: an index n ~ U{1..T}, sqrt(a) = l[n]; the model sees n / T.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    steps = len(levels) - 1
    table = tf.constant(levels, tf.float32)
    s = tf.random.stateless_uniform([batch_size], seeds[0], minval=1, maxval=steps + 1, dtype=tf.int32)
    if not continuous:
        return tf.gather(table, s), tf.cast(s, tf.float32) / steps
    hi, lo = tf.gather(table, s - 1), tf.gather(table, s)
    u = tf.random.stateless_uniform([batch_size], seeds[1])
    level = lo + u * (hi - lo)
    return level, level


def dataset(clips: list[Clip], cfg: Config, batch_size: int, seed: int) -> tf.data.Dataset:
    """Endless batches {audio, mel, noisy_audio, noise, noise_level, conditioning}, and with InferGrad's loss
    sampler_noise [batch, steps, samples]; the noise is drawn from the config's prior (`wavegrad_tf.priors`) for
    each crop's mel.

    Crop starts are drawn uniformly over all valid hop-aligned positions of the corpus, so long
    files are sampled in proportion to their length. The diffusion noise is drawn here, from
    stateless seeds, so a training step is a pure function of its batch.
    """
    if not clips:
        raise ValueError("no usable training files (see the skipped-file log above)")
    hop, seg = cfg.audio.hop_length, cfg.train.segment_length
    starts = np.array([(c.num_samples - seg) // hop + 1 for c in clips], np.int64)
    cumulative = tf.constant(np.cumsum(starts))
    total = int(np.sum(starts))
    levels = schedules.noise_levels(schedules.get_schedule(cfg.diffusion.train_schedule))
    prior = priors.prior_for(cfg)

    def pick(r):
        u = r % total
        idx = tf.searchsorted(cumulative, [u], side="right")[0]
        start = u - tf.concat([[0], cumulative], 0)[idx]
        return idx, start

    paths = tf.constant([c.cache for c in clips])

    def load(idx, start):
        window = read_window(paths[idx], start, cfg)
        return tf.ensure_shape(window, [seg + cfg.audio.win_length])

    # InferGrad's sampler: white noise for every step of the longest schedule it unrolls (the sampler shapes it by
    # the prior, as at inference).
    sampler_steps = max(map(len, infer_schedules(cfg)), default=0) if cfg.train.infer_loss_weight else 0

    def features(window, seeds):
        audio, log_mel = crop_features(window, cfg)
        noise = prior.shape(tf.random.stateless_normal(tf.shape(audio), seeds[0]), prior.condition(log_mel))
        level, conditioning = draw_noise_level(seeds[1], batch_size, levels, cfg.diffusion.continuous)
        batch = {"audio": audio, "mel": log_mel, "noise": noise, "noise_level": level,
                 "conditioning": conditioning, "noisy_audio": add_noise(audio, noise, level)}
        if sampler_steps:
            batch["sampler_noise"] = tf.random.stateless_normal(
                [batch_size, sampler_steps, seg], tf.random.experimental.stateless_fold_in(seeds[0], 1))
        return batch

    windows = (tf.data.Dataset.random(seed=seed).map(pick).map(load, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(batch_size, drop_remainder=True))
    seeds = tf.data.Dataset.random(seed=seed + 1).batch(4, drop_remainder=True).map(lambda s: tf.reshape(s, [2, 2]))
    ds = tf.data.Dataset.zip(windows, seeds).map(features, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.threading.private_threadpool_size = hardware.usable_cpus()  # not the host's cores: a cgroup's quota
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
