"""Size, memory, speed, time to first audio and quality of every deployment artefact of a trained model.

    python benchmarks/deploy.py --model runs/demo
    python benchmarks/deploy.py --model base-random          # WaveGrad Base with random weights: speed and memory

Exports the SavedModel and every static-shape TFLite variant into --work, then measures each artefact in a
fresh process (so its peak RSS is its own), on --seconds of real speech (the run's held-out and training
clips, or the bundled corpus), 6 iterations, --threads threads, after one warm-up pass:
  RTF            compute seconds per second of audio (median of --repeats whole `vocode` calls)
  first audio    seconds from `stream()` to its first piece (median of --repeats; every path starts with a
                 chunk of the TFLite export's smallest signature, and continues with --chunk_frames)
  GFLOP/s        the network's convolution FLOPs (counted from its layers) over the RTF's time
  peak RSS       the process's maximum resident memory (model, interpreter arenas, input and output)
  vs float32     every path gets the same position-keyed noise and chunk layout, so the relative L2 distance
                 of its audio to the Keras float32 audio (all but the last chunk, which the TFLite runner pads)
                 is the precision's own error; log-mel L1 to the speech beside it.
--measure long vocodes 10 s and 10 minutes with the TFLite runner, streamed, to show its memory does not grow with
the input. --measure memory streams the --seconds through the float32 .tflite once per chunk layout of --layouts
(first,rest frames; the last chunk takes the smallest signature that holds it), each in a fresh process: what
each signature's arena costs, so the signatures can be chosen by memory as well as speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from wavegrad_tf import hardware  # noqa: E402  (after the path)
from wavegrad_tf.runs import Run  # noqa: E402

WORKER = r"""
import json, statistics, sys, time
import numpy as np


def peak_rss_mb():
    # VmHWM starts afresh at exec; getrusage's ru_maxrss would carry over the parent's peak
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


kind, model, mel_path, repeats, out_path, threads, first, largest, blocks, consistency = sys.argv[1:11]
repeats, threads, first, largest, blocks = int(repeats), int(threads), int(first), int(largest), int(blocks)
mel = np.load(mel_path)
start = time.perf_counter()
if kind.startswith("keras"):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    from wavegrad_tf.runs import Run
    from wavegrad_tf.runtime import Metadata
    from wavegrad_tf.vocoders.checkpoint import KerasVocoder
    vocoder = KerasVocoder.from_run(model, Metadata.plan(Run.open(model).config, precision=kind.split(":")[1],
                                                         consistency={"kind": consistency} if consistency else None))
elif kind == "saved_model":
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    from wavegrad_tf.vocoders import load_vocoder
    vocoder = load_vocoder(model)
else:
    from wavegrad_tf.vocoders.litert import LiteRTVocoder
    vocoder = LiteRTVocoder(model, threads=threads)
loaded = time.perf_counter() - start
# One chunk layout on every path: first audio and the audio itself compared like for like
vocoder.first_chunk_frames, vocoder.chunk_frames = first, largest
times, firsts = [], []
if repeats:
    audio = vocoder.vocode(mel, seed=0)  # warm-up: traces, arenas, delegate
    for _ in range(repeats):
        t = time.perf_counter(); audio = vocoder.vocode(mel, seed=0); times.append(time.perf_counter() - t)
        t = time.perf_counter(); next(vocoder.stream(mel, seed=0)); firsts.append(time.perf_counter() - t)
else:  # memory only (--measure long): one pass, streamed and dropped as an app would play or write it
    t = time.perf_counter()
    # `blocks` copies of the mel, fed one by one as a TTS model would: only the runner's memory is measured
    for audio in vocoder.stream((mel for _ in range(blocks)), seed=0):
        pass
    times.append(time.perf_counter() - t)
np.save(out_path, audio)
print(json.dumps({"seconds": statistics.median(times), "first_audio": statistics.median(firsts or [0.0]),
                  "load": loaded, "peak_rss_mb": peak_rss_mb()}))
"""


def forward_gflops_per_second_of_audio(cfg) -> float:
    """Convolution FLOPs (2 x multiply-adds) of one forward pass, per second of audio, counted from the layers."""
    import keras

    from wavegrad_tf.model import build_model

    model, frames, total = build_model(cfg), 100, [0]
    originals = {cls: cls.call for cls in (keras.layers.Conv1D, keras.layers.DepthwiseConv1D)}

    def counting(cls):
        def call(self, x):
            y = originals[cls](self, x)
            k, c_in = self.kernel.shape[0], x.shape[-1]
            total[0] += 2 * k * (c_in * y.shape[-1] if cls is keras.layers.Conv1D else c_in) * y.shape[1]
            return y
        return call

    for cls in originals:
        cls.call = counting(cls)
    try:
        model([np.zeros((1, frames * cfg.audio.hop_length), "f4"), np.full((1, frames, cfg.audio.n_mels), -5, "f4"),
               np.array([0.5], "f4")])
    finally:
        for cls, call in originals.items():
            cls.call = call
    return total[0] / (frames * cfg.audio.hop_length / cfg.audio.sample_rate) / 1e9


def random_base_run(folder: Path) -> Path:
    """A run folder holding WaveGrad Base with random weights (the paper's features, PriorGrad's prior)."""
    if (folder / "config.yaml").exists():
        return folder
    from wavegrad_tf.config import load_config
    from wavegrad_tf.trainer import Trainer

    cfg = load_config("base", ["diffusion.prior=priorgrad", "diffusion.prior_energy_max=7.0", "model.init=fan_in",
                               "model.mel_mean=-5", "model.mel_std=2.5"])
    trainer = Trainer(cfg, folder)
    trainer.run.save_config(trainer.cfg)
    trainer.manager.save(checkpoint_number=1)
    return folder


def speech_mel(model: str, cfg, seconds: float):
    """(mel, audio) of `seconds` of real speech at the model's rate: the run's held-out then training clips,
    else the bundled corpus."""
    from wavegrad_tf import mel as mel_lib
    from wavegrad_tf.audio import DEMO_CORPUS, list_audio_files, load_audio

    run = Run.open(model)
    files = (run.held_out_files() + run.training_files() if (run.folder / "data_split.json").exists()
             else list_audio_files(DEMO_CORPUS))
    pieces, total = [], 0
    for path in files:
        pieces.append(load_audio(path, cfg.audio.sample_rate))
        total += len(pieces[-1])
        if total >= seconds * cfg.audio.sample_rate:
            break
    speech = np.concatenate(pieces)[:int(seconds * cfg.audio.sample_rate)]
    speech = speech[:len(speech) // cfg.audio.hop_length * cfg.audio.hop_length]
    return mel_lib.log_mel_spectrogram(speech, cfg.audio, use_tf=False)[:-1], speech


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A run folder, a pretrained name, or base-random.")
    parser.add_argument("--work", default="exported/deploy-bench", help="Where the exports go (reused if present).")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=hardware.usable_cpus())
    parser.add_argument("--chunk_frames", type=int, default=None, help="Frames per chunk after the first, on every "
                        "path; default: the export's largest signature. A smaller one bounds memory.")
    parser.add_argument("--consistency", default=None, help="The sampler's projection in every artefact (none, mel, "
                        "gla, gla_once); default: the model's. Full int8 is exported only with none.")
    parser.add_argument("--measure", default="table", help="table (every artefact), long (10 s and 10 minutes "
                        "streamed through the TFLite dynamic int8 runner, one pass each: memory against length), "
                        "memory (peak RSS of the float32 .tflite for each of --layouts), comma-separated.")
    parser.add_argument("--signature_frames", default=None, help="The TFLite export's signatures (comma-separated "
                        "frame counts); default: export.tflite's.")
    parser.add_argument("--layouts", default=None, help="--measure memory: chunk layouts first:rest in frames, "
                        "comma-separated (each size a signature of the export); default: each signature alone.")
    args = parser.parse_args()
    measures = set(args.measure.split(","))
    if not measures or measures - {"table", "long", "memory"}:
        parser.error(f"--measure: expected any of table, long, memory, got {args.measure!r}")

    from wavegrad_tf.export.saved_model_lib import export_saved_model
    from wavegrad_tf.export.tflite_lib import SIGNATURE_FRAMES, VARIANTS, export_tflite
    from wavegrad_tf import mel as mel_lib
    from wavegrad_tf.metrics import multi_resolution_stft_distance

    signatures = tuple(int(n) for n in args.signature_frames.split(",")) if args.signature_frames else SIGNATURE_FRAMES
    work = Path(args.work) / (Path(args.model).name + (f"-{args.consistency}" if args.consistency else "")
                              + ("-" + "-".join(map(str, signatures)) if args.signature_frames else ""))
    consistency = {"kind": args.consistency} if args.consistency else None
    work.mkdir(parents=True, exist_ok=True)
    model = str(random_base_run(work / "run") if args.model == "base-random" else Run.open(args.model).folder)
    cfg = Run.open(model).config
    if measures != {"memory"} and not (work / "saved_model").exists():
        export_saved_model(model, work / "saved_model", "wavegrad", 1, consistency=consistency)
    if not (work / "tflite" / "wavegrad.json").exists():
        export_tflite(model, work / "tflite", consistency=consistency, signature_frames=signatures,
                      variants=["float32"] if measures == {"memory"} else None,
                      calibration_audio=None if Run.open(model).has_split else
                      str(ROOT / "wavegrad_tf" / "demo_data" / "speech"))
    chunk_frames = args.chunk_frames or signatures[-1]
    mel, speech = speech_mel(model, cfg, args.seconds)
    np.save(work / "mel.npy", mel)
    seconds = len(mel) * cfg.audio.hop_length / cfg.audio.sample_rate
    gflop = forward_gflops_per_second_of_audio(cfg) * 6  # six network passes per second of audio

    def measure(kind, path, mel_file, repeats=args.repeats, blocks=1, first=signatures[0], rest=chunk_frames):
        out = subprocess.run([sys.executable, "-c", WORKER, kind, str(path), str(mel_file), str(repeats),
                              str(work / "audio.npy"), str(args.threads),
                              str(first), str(rest), str(blocks), args.consistency or ""],
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode:
            raise RuntimeError(f"{kind} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1]), np.load(work / "audio.npy")

    # bfloat16 only where the CPU computes it: emulated, it is 6x slower (docs/training.md) and tells nothing new.
    native_bfloat16 = hardware.this_machine().native_bfloat16
    artefacts = {"Keras float32 (TF graph)": ("keras:float32", model),
                 **({"Keras bfloat16 (TF graph)": ("keras:bfloat16", model)} if native_bfloat16 else {}),
                 "SavedModel": ("saved_model", work / "saved_model" / "wavegrad" / "1"),
                 **{f"TFLite {v}": ("tflite", work / "tflite" / f"{v}.tflite") for v in VARIANTS
                    if (work / "tflite" / f"{v}.tflite").exists()}}  # no full int8 with a projection (it cannot hold one)
    if "memory" in measures:
        print(f"`python benchmarks/deploy.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}: "
              f"{args.model} float32 .tflite (signatures {list(signatures)}, {args.consistency or 'the config'}'s "
              f"projection), {seconds:.1f} s streamed once per layout, each in a fresh process\n")
        print("| chunks (first, then) | peak RSS (MB) | RTF (one pass) |\n|---|---|---|")
        for layout in (args.layouts or ",".join(f"{n}:{n}" for n in signatures)).split(","):
            first, rest = (int(n) for n in layout.split(":"))
            stats, _ = measure("tflite", work / "tflite" / "float32.tflite", work / "mel.npy", 0, 1, first, rest)
            print(f"| {first}, {rest} | {stats['peak_rss_mb']:.0f} | {stats['seconds'] / seconds:.3f} |", flush=True)
    if "table" in measures:
        rows, reference = [], None
        for name, (kind, path) in artefacts.items():
            stats, audio = measure(kind, path, work / "mel.npy")
            reference = audio if reference is None else reference
            size = (sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir()
                    else Path(path).stat().st_size) if not kind.startswith("keras") else None
            # the last chunk is left out: the TFLite runner pads it with silence to a signature's size
            kept = max(len(mel) - chunk_frames, 1) * cfg.audio.hop_length
            rows.append((name, size, stats, float(np.linalg.norm(audio[:kept] - reference[:kept]) /
                                                  np.linalg.norm(reference[:kept])),
                         mel_lib.log_mel_l1(audio, speech, cfg.audio, use_tf=False),
                         multi_resolution_stft_distance(audio, speech)))
            print(f"{name}: done", file=sys.stderr, flush=True)
        print(f"`python benchmarks/deploy.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}: "
              f"{args.model} ({cfg.name}, "
              f"{gflop / 6:.2f} GFLOP per second of audio per pass), {seconds:.1f} s of speech, 6 iterations, "
              f"{args.threads} threads, medians of {args.repeats}, chunks of {signatures[0]} then {chunk_frames} frames\n")
        print("| artefact | size (MB) | peak RSS (MB) | RTF | first audio (s) | GFLOP/s | audio vs float32 (rel. L2) "
              "| log-mel L1 to speech | MR-STFT to speech |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, size, stats, rel, l1, stft in rows:
            rtf = stats["seconds"] / seconds
            print(f"| {name} | {'-' if size is None else f'{size / 1e6:.2f}'} | {stats['peak_rss_mb']:.0f} | {rtf:.3f} | "
                  f"{stats['first_audio']:.3f} | {gflop / rtf:.0f} | {rel:.2e} | {l1:.3f} | {stft:.3f} |")
    if "long" in measures:
        print("\n| TFLite dynamic_int8 input (one pass, streamed) | peak RSS (MB) | RTF |\n|---|---|---|")
        for blocks in (1, int(np.ceil(600 / seconds))):
            stats, _ = measure("tflite", work / "tflite" / "dynamic_int8.tflite", work / "mel.npy", 0, blocks)
            print(f"| {seconds * blocks:.0f} s | {stats['peak_rss_mb']:.0f} | {stats['seconds'] / seconds / blocks:.3f} |")


if __name__ == "__main__":
    main()
