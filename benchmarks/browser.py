"""The browser page's speed beside the Python LiteRT runner's, in one run on this machine.

    (cd web && npm ci) && apt-get install chromium
    python benchmarks/browser.py --export exported/tflite [--seconds 10] [--repeats 3]

--export is a folder of export.tflite (its float32, float16 and dynamic_int8 files are measured, whichever exist).
For each file: the real-time factor of vocoding --seconds of real speech (the bundled corpus) and the time to its
first audio, in headless Chromium through the page's own `vocode` (LiteRT.js, WebAssembly; playback off) and in
Python through `LiteRTVocoder` (ai-edge-litert), the same chunk layout, mel and seed; medians of --repeats after
a warm-up. Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from wavegrad_tf import audio, hardware, mel, web_lib  # noqa: E402
from wavegrad_tf.runtime import Metadata  # noqa: E402
from wavegrad_tf.vocoders.litert import LiteRTVocoder  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGE_TIMING = """async ([data, frames, repeats]) => {
  const w = window.wavegrad, mel = Float32Array.from(data), runs = [];
  await w.vocode(w.vocoder, mel, frames, 0, {play: false});  // warm-up: arenas, packing
  for (let i = 0; i < repeats; i++) {
    const r = await w.vocode(w.vocoder, mel, frames, 0, {play: false});
    runs.push([r.seconds, r.firstAudio]);
  }
  return runs;
}"""


def python_timing(path: Path, spectrogram: np.ndarray, repeats: int) -> list:
    vocoder = LiteRTVocoder(path)
    vocoder.vocode(spectrogram, seed=0)
    runs = []
    for _ in range(repeats):
        start, first = time.perf_counter(), None
        for _piece in vocoder.stream(spectrogram, seed=0):
            first = first or time.perf_counter() - start
        runs.append((time.perf_counter() - start, first))
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="A folder written by export.tflite.")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    export = Path(args.export)
    audio_cfg = Metadata.load(export / "wavegrad.json").audio
    speech = np.concatenate([audio.load_audio(p, audio_cfg.sample_rate) for p in audio.list_audio_files(audio.DEMO_CORPUS)])
    speech = speech[:int(args.seconds * audio_cfg.sample_rate)]
    spectrogram = np.asarray(mel.log_mel_spectrogram(speech, audio_cfg, use_tf=False), np.float32)
    seconds = len(spectrogram) * audio_cfg.hop_length / audio_cfg.sample_rate
    print(f"`python benchmarks/browser.py {' '.join(sys.argv[1:])}` on {hardware.this_machine().describe()}, "
          f"{hardware.usable_cpus()} usable CPUs, {seconds:.1f} s of speech, medians of {args.repeats}\n")
    print("| file | size (MB) | runner | RTF | first audio (s) |\n|---|---|---|---|---|")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        for variant in ("float32", "float16", "dynamic_int8"):
            path = export / f"{variant}.tflite"
            if not path.exists():
                continue
            server = web_lib.serve(path, port=0)
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("window.wavegrad && window.wavegrad.ready", timeout=300_000)
            threads = page.evaluate("self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 4) : 1")
            runs = {f"browser (LiteRT.js, {threads} threads)": page.evaluate(
                        PAGE_TIMING, [spectrogram.ravel().tolist(), len(spectrogram), args.repeats]),
                    f"Python (ai-edge-litert, {hardware.usable_cpus()} threads)": python_timing(
                        path, spectrogram, args.repeats)}
            page.close()
            server.shutdown()
            for runner, timings in runs.items():
                rtf = statistics.median(t for t, _ in timings) / seconds
                first = statistics.median(f for _, f in timings)
                print(f"| {variant} | {path.stat().st_size / 1e6:.2f} | {runner} | {rtf:.3f} | {first:.3f} |",
                      flush=True)
        browser.close()


if __name__ == "__main__":
    main()
