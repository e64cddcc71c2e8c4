"""Vocoding a corpus: the folder mode (`infer --input FOLDER`, one process) against a shell loop of single-file
`infer` calls, the same model and seeds, in one run on this machine. Files per second for each, and whether each
file's audio is the same, bit for bit.

    python benchmarks/corpus.py --model exported/tflite/float16.tflite --files 200 --loop_files 20
    python benchmarks/corpus.py --model asterisk-16k --files 200 --loop_files 20

The corpus: --files mels of 1 to 4 s (log-mels of the bundled recordings, cut at seeded lengths). The loop vocodes
the first --loop_files of them, each file with the seed the folder mode keys it by (`keyed_seed`), so the two give
the same noise; its rate is per file, start-up included (what a loop pays). Nothing else may run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from wavegrad_tf import audio, hardware, mel  # noqa: E402
from wavegrad_tf.runtime.noise import keyed_seed  # noqa: E402
from wavegrad_tf.vocoders import resolve  # noqa: E402

SEED = 0


def make_corpus(folder: Path, files: int, audio_cfg) -> list[Path]:
    rng = np.random.default_rng(0)
    speech = np.concatenate([audio.load_audio(p, audio_cfg.sample_rate) for p in audio.list_audio_files(audio.DEMO_CORPUS)])
    features = mel.log_mel_spectrogram(speech, audio_cfg, use_tf=False)
    rate = audio_cfg.sample_rate / audio_cfg.hop_length
    paths = []
    for i in range(files):
        frames = int(rng.uniform(1.0, 4.0) * rate)
        start = int(rng.integers(0, len(features) - frames))
        path = folder / f"{i // 50:02d}" / f"mel{i:04d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, features[start:start + frames])
        paths.append(path)
    return paths


def infer(*args) -> None:
    subprocess.run([sys.executable, "-m", "wavegrad_tf.infer", *args], check=True, cwd=ROOT, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="What infer's --model takes: a .tflite, a run, a pretrained name")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--loop_files", type=int, default=20)
    args = parser.parse_args()
    audio_cfg = resolve(args.model).audio_cfg
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        paths = make_corpus(work / "mels", args.files, audio_cfg)
        seconds = sum(len(np.load(p)) for p in paths) * audio_cfg.hop_length / audio_cfg.sample_rate
        start = time.perf_counter()
        infer("--model", args.model, "--input", str(work / "mels"), "--output", str(work / "folder"),
              "--seed", str(SEED))
        folder_time = time.perf_counter() - start
        start = time.perf_counter()
        keys = [p.relative_to(work / "mels") for p in paths[:args.loop_files]]
        for key in keys:
            output = (work / "loop" / key).with_suffix(".wav")
            output.parent.mkdir(parents=True, exist_ok=True)
            infer("--model", args.model, "--input", str(work / "mels" / key), "--output", str(output),
                  "--seed", str(keyed_seed(SEED, key.as_posix())))
        loop_time = time.perf_counter() - start
        pairs = [[sf.read((work / kind / key).with_suffix(".wav"), dtype="int16")[0].astype(np.int32)
                  for kind in ("loop", "folder")] for key in keys]
        same = [np.array_equal(a, b) for a, b in pairs]
        largest = max(int(np.abs(a - b).max()) for a, b in pairs)
    folder_rate, loop_rate = args.files / folder_time, args.loop_files / loop_time
    print(f"`python benchmarks/corpus.py {' '.join(sys.argv[1:])}`: {hardware.this_machine().describe()}, "
          f"{hardware.usable_cpus()} usable CPUs; {args.files} mels, {seconds:.0f} s of audio\n")
    print("| how | files | wall time | files per second | real-time factor |\n|---|---|---|---|---|")
    print(f"| folder mode (one process) | {args.files} | {folder_time:.1f} s | {folder_rate:.2f} | "
          f"{folder_time / seconds:.3f} |")
    loop_seconds = seconds * args.loop_files / args.files
    print(f"| shell loop of single-file infer | {args.loop_files} | {loop_time:.1f} s | {loop_rate:.2f} | "
          f"{loop_time / loop_seconds:.3f} (approx.) |")
    print(f"\nfolder mode: {folder_rate / loop_rate:.1f}x the loop's files per second; the same audio, bit for bit, "
          f"in {sum(same)} of {len(same)} files (largest difference {largest} in 16-bit steps; a backend that batches "
          "pads each mel to its length bucket, so its last frames differ from a lone call's: runtime/batches.py)")


if __name__ == "__main__":
    main()
