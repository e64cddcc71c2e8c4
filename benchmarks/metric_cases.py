"""Every metric on the known cases of tests/test_metrics.py: 3 s of a bundled clip, and the same with
white noise at 20 and 5 dB SNR; plus DNSMOS SIG, which the evaluator leaves out, on those 3 s and
on the whole clip.

    python benchmarks/metric_cases.py
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from wavegrad_tf import metrics  # noqa: E402
from wavegrad_tf.audio import load_audio  # noqa: E402
from wavegrad_tf.config import load_config  # noqa: E402

SPEECH = Path(__file__).resolve().parent.parent / "wavegrad_tf" / "demo_data" / "speech"


def main():
    cfg = load_config("demo").audio
    path = sorted(SPEECH.glob("*.flac"))[0]
    clean = load_audio(path, cfg.sample_rate)[:3 * cfg.sample_rate]
    cases = {"identical": clean, "20 dB SNR": metrics.with_white_noise(clean, 20),
             "5 dB SNR": metrics.with_white_noise(clean, 5)}
    print(f"{path.name}, first 3 s\n\n| metric | better | " + " | ".join(cases) + " |\n|---|---|---|---|---|")
    for name, metric in metrics.METRICS.items():
        values = [metric.compute(audio, clean, cfg) for audio in cases.values()]
        print(f"| {metric.label} | {metric.better} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    whole = load_audio(path, cfg.sample_rate)
    for label, audio in (("first 3 s", clean), (f"whole {len(whole) / cfg.sample_rate:.1f} s", whole)):
        sig = [metrics.dnsmos(a, cfg.sample_rate)["sig"] for a in
               (audio, metrics.with_white_noise(audio, 20), metrics.with_white_noise(audio, 5))]
        print(f"| DNSMOS SIG, {label} (not reported) | higher | " + " | ".join(f"{v:.3f}" for v in sig) + " |")


if __name__ == "__main__":
    main()
