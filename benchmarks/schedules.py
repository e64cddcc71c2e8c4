"""Log-mel L1 of each sampling schedule on the held-out clips of a trained run (lower is better).

    python benchmarks/schedules.py --model_dir runs/demo

Also prints the floor a vocoder must beat: Gaussian noise at the clip's loudness. Each clip is
vocoded with the same seed for every schedule.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from wavegrad_tf import diffusion, infer  # noqa: E402
from wavegrad_tf.audio import load_audio  # noqa: E402
from wavegrad_tf.mel import log_mel_spectrogram  # noqa: E402

SCHEDULES = {
    "manual-6": "manual-6",
    "ivanvovk searched 6 (LJSpeech)": [1e-6, 1.8929e-5, 1.1943e-4, 1.00475e-3, 1.10943e-2, 6e-2],
    "fibonacci-25": "fibonacci-25",
    "linear-50": "linear-50",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    args = parser.parse_args()
    cfg, model = infer.load_model(args.model_dir)
    held_out = json.load(open(os.path.join(args.model_dir, "data_split.json")))["validation"]
    clips = [load_audio(path, cfg.audio.sample_rate) for path in held_out]
    mels = [log_mel_spectrogram(a, cfg.audio).numpy() for a in clips]

    def l1(audio, mel):
        return float(np.mean(np.abs(log_mel_spectrogram(np.clip(audio, -1, 1), cfg.audio).numpy() - mel)))

    print(f"{args.model_dir}: {len(clips)} held-out clips, {sum(map(len, clips)) / cfg.audio.sample_rate:.1f} s")
    print("| schedule | steps | last noise level | log-mel L1 | seconds |")
    print("|---|---|---|---|---|")
    for name, spec in SCHEDULES.items():
        betas = diffusion.get_schedule(spec)
        t = time.perf_counter()
        score = np.mean([l1(infer.vocode(model, cfg, m, betas, seed=0)[:len(a)], m) for a, m in zip(clips, mels)])
        print(f"| {name} | {len(betas)} | {diffusion.noise_levels(betas)[-1]:.3f} | {score:.3f} | "
              f"{time.perf_counter() - t:.1f} |", flush=True)
    rng = np.random.default_rng(0)
    noise = np.mean([l1(rng.standard_normal(len(a)).astype(np.float32) * a.std(), m) for a, m in zip(clips, mels)])
    print(f"| Gaussian noise at the clip's loudness | - | - | {noise:.3f} | - |")


if __name__ == "__main__":
    main()
