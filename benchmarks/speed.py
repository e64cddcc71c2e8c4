"""Training throughput and vocoding real-time factor, float32 against bfloat16, on this machine.

    python benchmarks/speed.py [--configs base,demo] [--repeats 5]

Training: audio samples per second through full training steps (forward, backward, Adam, weight average)
on the config's segment length and batch --batch_size. Vocoding: the 6-iteration real-time factor on 10 s
of audio in the default 400-frame chunks with the config's consistency projection, and its ratio to 6 bare
forward passes over the same 10 s (the sampler's, the projection's and the chunking's overhead). Each is measured in float32 and mixed_bfloat16 in the same run, so
the ratio is this CPU's bfloat16 gain. Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from timing import median_seconds  # noqa: E402
from wavegrad_tf import hardware  # noqa: E402
from wavegrad_tf.config import load_config  # noqa: E402
from wavegrad_tf.model import build_model  # noqa: E402
from wavegrad_tf.trainer import Trainer  # noqa: E402
from wavegrad_tf.vocoders.checkpoint import KerasVocoder  # noqa: E402

RECIPE = ["diffusion.prior=priorgrad", "diffusion.prior_energy_max=5.0", "train.ema_decay=0.999"]


def training_samples_per_second(name: str, precision: str, batch_size: int, repeats: int, workdir: str) -> float:
    cfg = load_config(name, RECIPE + [f"train.batch_size={batch_size}", f"train.precision={precision}"])
    trainer = Trainer(cfg, os.path.join(workdir, f"{name}-{precision}"))
    seg, frames = cfg.train.segment_length, cfg.train.segment_length // cfg.audio.hop_length
    rng = np.random.default_rng(0)
    batch = {"noisy_audio": rng.standard_normal((batch_size, seg), np.float32),
             "noise": rng.standard_normal((batch_size, seg), np.float32),
             "noise_std": rng.uniform(0.1, 1, (batch_size, seg)).astype(np.float32),
             "mel": rng.normal(-5, 2, (batch_size, frames, cfg.audio.n_mels)).clip(-11, 1).astype(np.float32),
             "conditioning": rng.uniform(0.1, 1, batch_size).astype(np.float32)}
    batch = {k: tf.constant(v) for k, v in batch.items()}
    return batch_size * seg / median_seconds(lambda: float(trainer.train_step(batch)["loss"]), repeats)


def vocoding(name: str, precision: str, seconds: float, repeats: int) -> tuple[float, float]:
    """(real-time factor of 6 iterations, the same over 6 bare forward passes)."""
    cfg = load_config(name, RECIPE)
    network = build_model(cfg, dtype={"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision])
    vocoder = KerasVocoder(cfg, network)
    frames = int(seconds * cfg.audio.sample_rate) // cfg.audio.hop_length
    mel = np.random.default_rng(0).normal(-5, 2, (frames, cfg.audio.n_mels)).clip(-11, 1).astype(np.float32)
    sampler = median_seconds(lambda: vocoder.vocode(mel, seed=0), repeats)
    y, m, level = tf.zeros([1, frames * cfg.audio.hop_length]), tf.constant(mel[None]), tf.constant([0.5])
    eps = tf.function(lambda y, m, c: network([y, m, c], training=False))
    bare = median_seconds(lambda: [eps(y, m, level).numpy() for _ in range(6)], repeats)
    audio_seconds = frames * cfg.audio.hop_length / cfg.audio.sample_rate
    return sampler / audio_seconds, sampler / bare


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="base,demo")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"`python benchmarks/speed.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}, "
          f"{hardware.configure_tensorflow()} threads, TensorFlow {tf.__version__}, medians of {args.repeats} runs\n")
    print(f"| config | precision | training audio samples/s (batch {args.batch_size}) | 6-iteration RTF on "
          f"{args.seconds:g} s | sampler / 6 bare passes |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.configs.split(","):
            for precision in ("float32", "bfloat16"):
                sps = training_samples_per_second(name, "mixed_bfloat16" if precision == "bfloat16" else precision,
                                                  args.batch_size, args.repeats, workdir)
                rtf, ratio = vocoding(name, precision, args.seconds, args.repeats)
                print(f"| {name} | {precision} | {sps:,.0f} | {rtf:.3f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
