"""Where a training step's time goes, and what XLA changes: the parts of one step timed alone, in one run.

    python benchmarks/profile_step.py --config base --batch_size 16 --threads 1 \
        --override audio.sample_rate=22050 --override audio.fmax=11025

Parts, each the median of --repeats after a warm-up, on random weights and a fixed batch (speed does not
depend on either): the input pipeline (a batch of crops with their mels and prior noise, from the bundled
corpus), the forward pass, forward and backward, the full step (all-reduce, clipping, Adam, the weight
average), the weight average alone; then the full step compiled with XLA (jit_compile). Prints the CPU and
its flags first: every figure belongs to the CPU it was measured on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="base")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="Default: the CPUs this process may use.")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--override", action="append", default=[])
    args = parser.parse_args()

    from wavegrad_tf import hardware

    threads = hardware.configure_tensorflow(args.threads)
    import tensorflow as tf

    from wavegrad_tf import data
    from wavegrad_tf.audio import DEMO_CORPUS
    from wavegrad_tf.config import load_config
    from wavegrad_tf.trainer import Trainer
    from timing import median_seconds

    # The recipe's prior and weight average, as the convergence benchmark's `chosen` trains them.
    cfg = load_config(args.config, [f"train.batch_size={args.batch_size}", f"train.precision={args.precision}",
                                    "diffusion.prior=priorgrad", "diffusion.prior_energy_max=5.0",
                                    "train.ema_decay=0.999"] + args.override)
    print(f"`python benchmarks/profile_step.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}, "
          f"{threads} thread(s), TensorFlow {tf.__version__}, medians of {args.repeats}\n")
    with tempfile.TemporaryDirectory() as work:
        corpus = data.prepare_corpus(DEMO_CORPUS, cfg, Path(work) / "cache")
        trainer = Trainer(cfg, Path(work) / "run")
        cfg = trainer.cfg
        batches = iter(data.dataset(corpus.clips, cfg, cfg.train.batch_size, seed=0))
        batch = next(batches)
        model = trainer.network
        samples = cfg.train.batch_size * cfg.train.segment_length

        @tf.function
        def forward(b):
            return model([b["noisy_audio"], b["mel"], b["conditioning"]], training=True)

        @tf.function
        def forward_backward(b):
            with tf.GradientTape() as tape:
                pred = model([b["noisy_audio"], b["mel"], b["conditioning"]], training=True)
                loss = tf.reduce_mean(tf.abs(b["noise"] - tf.cast(pred, tf.float32)))
            return tape.gradient(loss, model.trainable_variables)

        @tf.function
        def average():
            trainer._update_ema()

        rows = [("input pipeline (one batch)", lambda: next(batches)),
                ("forward", lambda: forward(batch)),
                ("forward + backward", lambda: [g.numpy() for g in forward_backward(batch)[:1]]),
                ("full step", lambda: float(trainer.train_step(batch)["loss"])),
                ("weight average alone", lambda: average())]
        results = [(name, median_seconds(fn, args.repeats)) for name, fn in rows]
        jit = Trainer(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, jit_compile=True)),
                      Path(work) / "run-xla")
        try:
            results.append(("full step, XLA (train.jit_compile)",
                             median_seconds(lambda: float(jit.train_step(batch)["loss"]), args.repeats)))
        except Exception as e:  # XLA may refuse an op: say which, keep the rest
            print(f"XLA: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        full = dict(results)["full step"]
        print(f"| part ({cfg.name}, batch {cfg.train.batch_size} x {cfg.train.segment_length}, {cfg.train.precision}) "
              "| seconds | of the full step | audio samples per second |")
        print("|---|---|---|---|")
        for name, seconds in results:
            print(f"| {name} | {seconds:.3f} | {seconds / full:.0%} | {samples / seconds:,.0f} |")


if __name__ == "__main__":
    main()
