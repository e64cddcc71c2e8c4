"""Base-size training and vocoding speed against lmnt-com/wavegrad and ivanvovk/WaveGrad, side by side in one run.

    pip install torch==2.13.0 && pip install --no-deps wavegrad==0.1.5   # lmnt's package (hop 300, 128 mels)
    python benchmarks/peers.py [--threads 2] [--repeats 3] [--ivanvovk DIR] [--jemalloc /usr/lib/.../libjemalloc.so.2]

--ivanvovk: a checkout of github.com/ivanvovk/WaveGrad (not on PyPI; its `model/` package is imported from
there, its default config: Base at hop 300, 80 mels), measured beside the others when given.

Training: audio samples per CPU-second through full training steps of a batch of 16 crops of 7,200 samples
(24 frames of hop 300), each system its own step (ours: the `chosen` recipe at `precision: auto`, and with --xla
also compiled by XLA, `train.jit_compile`; lmnt: its
learner, float32 Adam; ivanvovk: its compute_loss, backward, gradient clipping and Adam, as its train.py). Vocoding: 10 s of audio at 22.05 kHz, 6 iterations, each system's own sampler (ours
with and without the mel-consistency projection). Each measurement runs in a fresh process pinned to the same
--threads cores, ours and lmnt's alternating, repeated --repeats times; the table gives medians and the ratio.
CPU time (user + system of the process) is what is compared, as in benchmarks/convergence.py. The project
contains none of the peers' code: it is imported from their package or checkout.
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
system, task, steps, checkout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
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
    cfg = load_config("base", overrides + ["train.jit_compile=true"] * (system == "ours+xla"))
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
        step = lambda: float(trainer.train_step(batch)["loss"])
    else:
        from wavegrad_tf.model import build_model
        from wavegrad_tf.vocoders.checkpoint import KerasVocoder
        from wavegrad_tf.runtime import Metadata
        plan = Metadata.plan(cfg, precision="float32", consistency={"kind": "mel" if system == "ours+mel" else "none"})
        vocoder = KerasVocoder(cfg, build_model(cfg), plan)
        mel = rng.normal(-5, 2, (int(SECONDS * RATE) // 300, 128)).clip(-11, 1).astype(np.float32)
        step = lambda: vocoder.vocode(mel, seed=0)
elif system == "ivanvovk":
    import types
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    sys.path.insert(0, checkout)
    from model import WaveGrad
    A = types.SimpleNamespace
    iters = 1000 if task == "train" else 6  # the sampler's cost is per step: any 6-step schedule times the same
    cfg = A(model_config=A(factors=[5, 5, 3, 2, 2], upsampling_preconv_out_channels=768,
                           upsampling_out_channels=[512, 512, 256, 128, 128],
                           upsampling_dilations=[[1, 2, 1, 2], [1, 2, 1, 2], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8]],
                           downsampling_preconv_out_channels=32, downsampling_out_channels=[128, 128, 256, 512],
                           downsampling_dilations=[[1, 2, 4]] * 4,
                           noise_schedule=A(n_iter=iters, betas_range=[1e-6, 0.01] if iters == 1000 else [1e-4, 0.5])),
            data_config=A(n_mels=80, hop_length=300), training_config=A(segment_length=CROP))
    model = WaveGrad(cfg)
    if task == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        audio = torch.from_numpy(rng.standard_normal((BATCH, CROP), np.float32) * 0.1)
        mels = torch.from_numpy(rng.normal(-5, 2, (BATCH, 80, CROP // 300)).astype(np.float32))

        def step():
            model.zero_grad()
            model.compute_loss(mels, audio).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
    else:
        model.eval()
        mels = torch.from_numpy(rng.normal(-5, 2, (1, 80, int(SECONDS * RATE) // 300)).astype(np.float32))
        step = lambda: model(mels)
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


def measure(system: str, task: str, steps: int, cores: set, env: dict, checkout: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, system, task, str(steps), checkout], capture_output=True, text=True,
                         env=env, preexec_fn=lambda: os.sched_setaffinity(0, cores))
    if out.returncode:
        raise RuntimeError(f"{system} {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="Cores each process is pinned to.")
    parser.add_argument("--ivanvovk", default=None, help="A checkout of ivanvovk/WaveGrad, to measure it too.")
    parser.add_argument("--xla", action="store_true", help="Also train ours with train.jit_compile (XLA).")
    parser.add_argument("--repeats", type=int, default=3, help="Fresh processes per system and task.")
    parser.add_argument("--steps", type=int, default=5, help="Timed training steps per process.")
    parser.add_argument("--jemalloc", default=None, help="libjemalloc.so.2 for lmnt (PyTorch maps and unmaps Base's "
                        "activations at every step on glibc's malloc; docs/training.md), for the PyTorch peers.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from wavegrad_tf import hardware

    cores = set(sorted(os.sched_getaffinity(0))[:args.threads])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    torch_env = {**env, **({"LD_PRELOAD": args.jemalloc, "MALLOC_CONF": "oversize_threshold:0,dirty_decay_ms:-1,"
                                                                      "muzzy_decay_ms:-1"} if args.jemalloc else {})}
    print(f"`python benchmarks/peers.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}, "
          f"{len(cores)} core(s) per process, medians of {args.repeats} processes\n")
    results = {}
    peers = ("lmnt", "ivanvovk") if args.ivanvovk else ("lmnt",)
    ours_train = ("ours", "ours+xla") if args.xla else ("ours",)
    for task, systems, steps in (("train", ours_train + peers, args.steps), ("vocode", ("ours", "ours+mel") + peers, 1)):
        for _ in range(args.repeats):
            for system in systems:
                results.setdefault((task, system), []).append(measure(
                    system, task, steps, cores, env if system.startswith("ours") else torch_env, args.ivanvovk or ""))
    print("| task | system | CPU-seconds | wall seconds | samples per CPU-second | lmnt's CPU-seconds over this |\n"
          "|---|---|---|---|---|---|")
    for (task, system), runs in results.items():
        seconds, wall = (statistics.median(r[key] for r in runs) for key in ("cpu", "wall"))
        samples = BATCH * CROP if task == "train" else SECONDS * RATE
        lmnt = statistics.median(r["cpu"] for r in results[(task, "lmnt")])
        print(f"| {task} | {system} | {seconds:.2f} | {wall:.2f} | {samples / seconds:,.0f} | {lmnt / seconds:.2f}x |")


if __name__ == "__main__":
    main()
