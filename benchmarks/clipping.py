"""Clipping the original did not have: the share of samples a 16-bit file holds at full scale, on loud speech (each
clip scaled to peaks of -3 dBFS, as mastered speech is), vocoded with and without the mel projection, by the sampler
as it is (its output limiter: `spectral.limit`) and as it was (a hard clip to [-1, 1] where the limiter is now, and
none after it), in one run.

    python benchmarks/clipping.py --model asterisk-16k --audio_dir corpora/asterisk/held_out/allison --clips 6

The recordings themselves never reach full scale (-3 dBFS); a share above 0 is the vocoder's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from wavegrad_tf import audio, hardware, mel, spectral  # noqa: E402
from wavegrad_tf.vocoders import load_vocoder  # noqa: E402

PEAK = 10 ** (-3 / 20)


def full_scale_share(x: np.ndarray) -> float:
    return float(np.mean(np.abs(np.round(np.clip(x, -1, 1) * 32767)) >= 32767))


def hard_clip(audio, hop, ceiling=spectral.CEILING, use_tf=True):
    """What the projection did before the limiter: a clip to full scale (and no limiting of the sampler's output)."""
    if use_tf:
        import tensorflow as tf

        return tf.clip_by_value(audio, -1.0, 1.0)
    return np.clip(audio, -1.0, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="asterisk-16k")
    parser.add_argument("--audio_dir", required=True)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    files = audio.list_audio_files(args.audio_dir)
    files = [files[i] for i in np.linspace(0, len(files) - 1, args.clips).astype(int)]
    print(f"`python benchmarks/clipping.py {' '.join(sys.argv[1:])}` ({hardware.this_machine().describe()}): "
          f"{args.clips} clips at -3 dBFS peaks, seeds 0-{args.seeds - 1}\n")
    print("| sampler | consistency | samples at full scale (mean) | worst clip | output peak (mean, dBFS) |\n"
          "|---|---|---|---|---|")
    for label, patch in (("as it was: a hard clip", hard_clip), ("as it is: the limiter", None)):
        for kind in ("mel", "none"):
            with mock.patch.object(spectral, "limit", patch) if patch else contextlib.nullcontext():
                vocoder = load_vocoder(args.model, consistency={"kind": kind})
                shares, peaks = [], []
                for path in files:
                    clip = audio.load_audio(path, vocoder.metadata.audio.sample_rate)
                    clip = clip / np.abs(clip).max() * PEAK
                    features = mel.log_mel_spectrogram(clip, vocoder.metadata.audio, use_tf=False)
                    for seed in range(args.seeds):
                        out = vocoder.vocode(features, seed)[:len(clip)]
                        shares.append(full_scale_share(out))
                        peaks.append(20 * np.log10(max(np.abs(np.clip(out, -1, 1)).max(), 1e-9)))
            print(f"| {label} | {kind} | {100 * np.mean(shares):.3f} % | {100 * np.max(shares):.3f} % | "
                  f"{np.mean(peaks):.2f} |", flush=True)


if __name__ == "__main__":
    main()
