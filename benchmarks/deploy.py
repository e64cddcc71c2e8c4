"""Size, peak memory, speed and quality of each deployment artefact of a trained run.

    python benchmarks/deploy.py --model_dir runs/demo

Exports the SavedModel and every TFLite variant to a temporary folder, then, each in a fresh process
(so peak RSS is its own): file size, peak resident memory while vocoding, the 6-iteration real-time
factor on 10 s of the run's held-out speech (median of --repeats), and the change against the float32
TFLite graph on the same mel: log-mel L1 and multi-resolution STFT distance (wavegrad_tf.metrics). All
graphs draw their own noise, so quality is compared as distances of each output to the original
speech, with float32's as the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, resource, statistics, sys, time
import numpy as np
kind, path, mel_path, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
mel = np.load(mel_path)
if kind == "saved_model":
    import tensorflow as tf
    fn = tf.saved_model.load(path).signatures["serving_default"]
    run = lambda: fn(mel=tf.constant(mel[None]), lengths=tf.constant([len(mel)], tf.int32))["audio"].numpy()[0]
else:
    from wavegrad_tf.litert import LiteRTVocoder
    vocoder = LiteRTVocoder(path)
    chunk = int(sys.argv[6])
    run = lambda: (vocoder.vocode(mel, seed=0, chunk_frames=chunk, overlap_frames=16) if chunk else
                   vocoder.vocode(mel, seed=0, chunk_frames=len(mel) + 1, overlap_frames=0))
audio = run()
times = []
for _ in range(repeats):
    t = time.perf_counter(); audio = run(); times.append(time.perf_counter() - t)
np.save(sys.argv[5], audio)
print(json.dumps({"seconds": statistics.median(times), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk_sweep", default="", help="e.g. 50,100,200,400: instead of the table, peak "
                        "memory and RTF of the dynamic_int8 runner at these chunk sizes (16-frame overlap)")
    args = parser.parse_args()
    import numpy as np

    from export.saved_model import export_saved_model
    from export.tflite import VARIANTS, export_tflite
    from wavegrad_tf import infer, metrics
    from wavegrad_tf.audio import load_audio
    from wavegrad_tf.mel import log_mel_spectrogram

    cfg, _ = infer.load_model(args.model_dir)
    split = json.loads((Path(args.model_dir) / "data_split.json").read_text())
    speech = np.concatenate([load_audio(p, cfg.audio.sample_rate) for p in split["validation"] + split["train"]])
    speech = speech[:int(args.seconds * cfg.audio.sample_rate)]
    mel = log_mel_spectrogram(speech, cfg.audio).numpy()[:len(speech) // cfg.audio.hop_length]
    audio_seconds = len(mel) * cfg.audio.hop_length / cfg.audio.sample_rate

    def measure(tmp, kind, path, chunk=0):
        out = subprocess.run([sys.executable, "-c", WORKER, kind, str(path), f"{tmp}/mel.npy", str(args.repeats),
                              f"{tmp}/audio.npy", str(chunk)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    if args.chunk_sweep:
        with tempfile.TemporaryDirectory() as tmp:
            np.save(f"{tmp}/mel.npy", mel)
            path = export_tflite(args.model_dir, f"{tmp}/tflite", variants=("dynamic_int8",))["dynamic_int8"]
            print(f"{args.model_dir}: dynamic_int8 runner on {audio_seconds:.1f} s, medians of {args.repeats}")
            print("| chunk (frames) | peak RSS (MB) | RTF |\n|---|---|---|")
            for chunk in map(int, args.chunk_sweep.split(",")):
                stats = measure(tmp, "tflite", path, chunk)
                print(f"| {chunk} | {stats['peak_rss_mb']:.0f} | {stats['seconds'] / audio_seconds:.3f} |", flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/mel.npy", mel)
        artefacts = {"SavedModel": ("saved_model", export_saved_model(args.model_dir, tmp, "wavegrad", 1))}
        for name, path in export_tflite(args.model_dir, f"{tmp}/tflite").items():
            if name in VARIANTS:
                artefacts[f"TFLite {name}"] = ("tflite", path)
        rows, reference = [], None
        for name, (kind, path) in artefacts.items():
            stats = measure(tmp, kind, path)
            size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir() \
                else Path(path).stat().st_size
            audio = np.load(f"{tmp}/audio.npy")
            distances = (metrics.log_mel_l1(audio, speech, cfg.audio),
                         metrics.multi_resolution_stft_distance(audio, speech))
            if name == "TFLite float32":
                reference = distances
            rows.append((name, size, stats, distances))
    print(f"{args.model_dir} ({cfg.name}), {audio_seconds:.1f} s of held-out and training speech, "
          f"{len(infer.schedule_for(cfg))} iterations, medians of {args.repeats}")
    print("| artefact | size (MB) | peak RSS (MB) | RTF | log-mel L1 to speech (vs float32) "
          "| MR-STFT distance to speech (vs float32) |")
    print("|---|---|---|---|---|---|")
    for name, size, stats, (mel_l1, stft) in rows:
        print(f"| {name} | {size / 1e6:.2f} | {stats['peak_rss_mb']:.0f} | {stats['seconds'] / audio_seconds:.3f} "
              f"| {mel_l1:.3f} ({mel_l1 - reference[0]:+.3f}) | {stft:.3f} ({stft - reference[1]:+.3f}) |")


if __name__ == "__main__":
    main()
