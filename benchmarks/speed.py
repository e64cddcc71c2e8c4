"""Training throughput and vocoding real-time factor on this machine (medians of repeated runs).

    python benchmarks/speed.py [--configs base,demo] [--repeats 5]

Training: audio samples per second through full training steps (forward, backward, Adam) on the
config's segment length. Vocoding: the 6-iteration (manual-6) real-time factor on 10 s of audio,
in the default 400-frame chunks; the baseline in the same run is 6 bare forward passes over the
same 10 s, so the ratio is the sampler and chunking overhead. Weights are random: speed does not
depend on them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavegrad_tf import infer, schedules  # noqa: E402
from wavegrad_tf.config import load_config  # noqa: E402
from wavegrad_tf.trainer import Trainer  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up: tracing and allocation
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def training_samples_per_second(name: str, batch_size: int, repeats: int, workdir: str) -> float:
    cfg = load_config(name, [f"train.batch_size={batch_size}"])
    trainer = Trainer(cfg, os.path.join(workdir, name))
    seg, frames = cfg.train.segment_length, cfg.train.segment_length // cfg.audio.hop_length
    rng = np.random.default_rng(0)
    batch = {"noisy_audio": rng.standard_normal((batch_size, seg), np.float32),
             "noise": rng.standard_normal((batch_size, seg), np.float32),
             "mel": rng.standard_normal((batch_size, frames, cfg.audio.n_mels), np.float32),
             "model_noise_level": rng.uniform(0.1, 1, batch_size).astype(np.float32)}
    batch = {k: tf.constant(v) for k, v in batch.items()}
    return batch_size * seg / median_time(lambda: float(trainer.train_step(batch)[0]), repeats)


def vocoding(name: str, seconds: float, repeats: int) -> tuple[float, float]:
    """(real-time factor of 6 iterations, the same over 6 bare forward passes)."""
    from wavegrad_tf.model import build_model

    cfg = load_config(name)
    model = build_model(cfg)
    frames = int(seconds * cfg.audio.sample_rate) // cfg.audio.hop_length
    mel = np.random.default_rng(0).normal(-4, 2, (frames, cfg.audio.n_mels)).astype(np.float32)
    betas = schedules.get_schedule("manual-6")
    sampler = median_time(lambda: infer.vocode(model, cfg, mel, betas, seed=0), repeats)
    eps = infer.noise_predictor(model)  # the sampler's own traced function
    y, m, level = tf.zeros([1, frames * cfg.audio.hop_length]), tf.constant(mel[None]), tf.constant([0.5])
    bare = median_time(lambda: [eps(y, m, level).numpy() for _ in range(len(betas))], repeats)
    audio_seconds = frames * cfg.audio.hop_length / cfg.audio.sample_rate
    return sampler / audio_seconds, sampler / bare


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="base,demo")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, medians of {args.repeats} runs")
    print("| config | training audio samples/s (batch %d) | 6-iteration RTF on %g s | sampler / 6 bare passes |"
          % (args.batch_size, args.seconds))
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.configs.split(","):
            sps = training_samples_per_second(name, args.batch_size, args.repeats, workdir)
            rtf, ratio = vocoding(name, args.seconds, args.repeats)
            print(f"| {name} | {sps:,.0f} | {rtf:.3f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
