"""Base-size training and vocoding speed against lmnt-com/wavegrad, side by side in one run, on this CPU.

    pip install wavegrad==0.1.5 torch==2.13.0           # lmnt's package (its network is fixed at hop 300, 128 mels)
    python benchmarks/peers.py [--threads 1] [--repeats 5] [--jemalloc /usr/lib/x86_64-linux-gnu/libjemalloc.so.2]

Training: audio samples per CPU-second through full training steps of a batch of 16 crops of 7,200 samples
(24 frames of hop 300), each system its own step (ours: the `chosen` recipe at `precision: auto`; lmnt: its
learner, float32 Adam). Vocoding: 10 s of audio at 22.05 kHz, 6 iterations, each system's own sampler (ours
with and without the mel-consistency projection). Each measurement runs in a fresh process pinned to the same
--threads cores, ours and lmnt's alternating, repeated --repeats times; the table gives medians and the ratio.
CPU time (user + system of the process) is what is compared, as in benchmarks/convergence.py. The project
contains none of lmnt's code: it is imported from its package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH, CROP, SECONDS, RATE = 16, 7200, 10.0, 22050

WORKER = r"""
import json, os, resource, sys, time
import numpy as np
system, task, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
BATCH, CROP, SECONDS, RATE = 16, 7200, 10.0, 22050
rng = np.random.default_rng(0)


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if system.startswith("ours"):
    from wavegrad_tf import hardware
    hardware.configure_tensorflow()
    import tensorflow as tf
    from wavegrad_tf.config import load_config
    overrides = ["audio.sample_rate=22050", "audio.fmax=11025", f"train.batch_size={BATCH}",
                 f"train.segment_length={CROP}", "diffusion.prior=priorgrad", "diffusion.prior_energy_max=5.0",
                 "train.ema_decay=0.999", "model.mel_mean=-5", "model.mel_std=2.5", "model.init=fan_in"]
    cfg = load_config("base", overrides)
    if task == "train":
        import tempfile
        from wavegrad_tf.trainer import Trainer
        trainer = Trainer(cfg, tempfile.mkdtemp())
        frames = CROP // 300
        batch = {"noisy_audio": rng.standard_normal((BATCH, CROP), np.float32),
                 "noise": rng.standard_normal((BATCH, CROP), np.float32),
                 "mel": rng.normal(-5, 2, (BATCH, frames, 128)).clip(-11, 1).astype(np.float32),
                 "conditioning": rng.uniform(0.1, 1, BATCH).astype(np.float32)}
        batch = {k: tf.constant(v) for k, v in batch.items()}
        step = lambda: float(trainer.train_step(batch)[0])
    else:
        from wavegrad_tf.model import build_model
        from wavegrad_tf.vocoders.checkpoint import KerasVocoder
        from wavegrad_tf.config import Consistency
        consistency = Consistency.of(cfg, kind="mel" if system == "ours+mel" else "none")
        vocoder = KerasVocoder(cfg, build_model(cfg), consistency=consistency)
        mel = rng.normal(-5, 2, (int(SECONDS * RATE) // 300, 128)).clip(-11, 1).astype(np.float32)
        step = lambda: vocoder.vocode(mel, seed=0)
else:
    import types
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # imported by lmnt, used only by its preprocessing
    import wavegrad.inference, wavegrad.learner, wavegrad.model, wavegrad.params
    params = wavegrad.params.AttrDict(wavegrad.params.params)
    model = wavegrad.model.WaveGrad(params)
    if task == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
        learner = wavegrad.learner.WaveGradLearner("/tmp/lmnt-bench", model, None, optimizer, params)
        features = {"audio": torch.from_numpy(rng.standard_normal((BATCH, CROP), np.float32) * 0.1),
                    "spectrogram": torch.from_numpy(rng.uniform(0, 1, (BATCH, 128, CROP // 300)).astype(np.float32))}
        step = lambda: learner.train_step(features)
    else:
        model.eval()
        wavegrad.inference.models["bench"] = model
        spectrogram = torch.from_numpy(rng.uniform(0, 1, (128, int(SECONDS * RATE) // 300)).astype(np.float32))
        schedule = {"noise_schedule": [1e-4, 1e-3, 1e-2, 5e-2, 2e-1, 5e-1]}
        step = lambda: wavegrad.inference.predict(spectrogram, "bench", schedule, device=torch.device("cpu"))
step()  # warm-up: tracing, allocation
start_cpu, start = cpu(), time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"cpu": (cpu() - start_cpu) / steps, "wall": (time.perf_counter() - start) / steps}))
"""


def measure(system: str, task: str, steps: int, cores: set, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, system, task, str(steps)], capture_output=True, text=True,
                         env=env, preexec_fn=lambda: os.sched_setaffinity(0, cores))
    if out.returncode:
        raise RuntimeError(f"{system} {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="Cores each process is pinned to.")
    parser.add_argument("--repeats", type=int, default=3, help="Fresh processes per system and task.")
    parser.add_argument("--steps", type=int, default=5, help="Timed training steps per process.")
    parser.add_argument("--jemalloc", default=None, help="libjemalloc.so.2 for lmnt (PyTorch maps and unmaps Base's "
                        "activations at every step on glibc's malloc; docs/training.md).")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from wavegrad_tf import hardware

    cores = set(sorted(os.sched_getaffinity(0))[:args.threads])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    lmnt_env = {**env, **({"LD_PRELOAD": args.jemalloc, "MALLOC_CONF": "oversize_threshold:0,dirty_decay_ms:-1,"
                                                                      "muzzy_decay_ms:-1"} if args.jemalloc else {})}
    print(f"`python benchmarks/peers.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}, "
          f"{len(cores)} core(s) per process, medians of {args.repeats} processes\n")
    results = {}
    for task, systems, steps in (("train", ("ours", "lmnt"), args.steps), ("vocode", ("ours", "ours+mel", "lmnt"), 1)):
        for _ in range(args.repeats):
            for system in systems:
                results.setdefault((task, system), []).append(
                    measure(system, task, steps, cores, lmnt_env if system == "lmnt" else env)["cpu"])
    print(f"| task | system | CPU-seconds | samples per CPU-second | against lmnt |\n|---|---|---|---|---|")
    for (task, system), values in results.items():
        seconds = statistics.median(values)
        samples = BATCH * CROP if task == "train" else SECONDS * RATE
        lmnt = statistics.median(results[(task, "lmnt")])
        print(f"| {task} | {system} | {seconds:.2f} | {samples / seconds:,.0f} | {lmnt / seconds:.2f}x |")


if __name__ == "__main__":
    main()
