"""Evaluate a vocoder on real recordings (`python -m wavegrad_tf.evaluate` is the command line): each clip is
vocoded from its own mel and scored against itself, beside Griffin-Lim from the same mel (the floor) and the
recording itself for the non-intrusive metrics (DNSMOS). Writes results.json, results.csv, summary.md,
spectrograms.png and the vocoded wavs in audio/. A metric whose package is missing is reported as missing."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np
from absl import logging

from wavegrad_tf import metrics
from wavegrad_tf.audio import AudioError, check_audio, list_audio_files, load_audio, save_wav
from wavegrad_tf.errors import UserError
from wavegrad_tf.mel import log_mel_spectrogram
from wavegrad_tf.plots import spectrogram_grid
from wavegrad_tf.progress import bar as progress_bar
from wavegrad_tf.tts_like import tts_like
from wavegrad_tf.vocoders import ModelSource, resolve
from wavegrad_tf.vocoders.griffin_lim import GriffinLim

SYSTEMS = ("wavegrad", "griffin_lim", "ground_truth")


def evaluation_files(source, audio_dir: Optional[str | os.PathLike]) -> list[Path]:
    """The recordings in `audio_dir`, or the clips a training run held out of training."""
    if audio_dir is not None:
        return list_audio_files(audio_dir, "--audio_dir")
    run = getattr(source, "run", None)
    if run is None or not run.has_split:
        raise UserError(f"--model {source.spec}: not a training run that lists its held-out clips; pass --audio_dir")
    return [Path(p) for p in run.held_out_files()]


def check_metrics(names) -> list[str]:
    names = list(names or metrics.METRICS)
    unknown = [n for n in names if n not in metrics.METRICS]
    if unknown:
        raise UserError(f"--metrics: unknown {unknown}; expected any of {list(metrics.METRICS)}")
    return names


def score(audio: np.ndarray, reference: np.ndarray, audio_cfg, names, ground_truth: bool = False) -> dict:
    """{metric: value}; NaN where the metric failed on this clip (the error is logged), None where the
    metric does not apply (an intrusive metric of the recording against itself)."""
    out = {}
    for name in names:
        metric = metrics.METRICS[name]
        if ground_truth and metric.intrusive:
            out[name] = None
            continue
        try:
            out[name] = metric.compute(audio, reference, audio_cfg)
        except Exception as e:  # e.g. PESQ finds no utterance in a clip: one clip, not the run
            logging.warning("%s failed: %s", name, e)
            out[name] = math.nan
    return out


MELS = ("exact", "tts_like")  # what the vocoders are given: the recording's mel, or a TTS model's (`tts_like`)


def evaluate(model, output, audio_dir=None, seed: int = 0, max_files: Optional[int] = None,
             griffin_lim_iterations: int = 32, metric_names=None, plot_files: int = 3, mel: str = "exact",
             progress: bool = False, **options) -> dict:
    """Scores every clip of `model` (a `ModelSource` or what names one; `options` are its `load`'s), writes the
    outputs to `output` and returns the results dict (results.json). `mel`: one of MELS."""
    for name, value, least in (("--max_files", max_files, 1), ("--griffin_lim_iterations", griffin_lim_iterations, 0),
                               ("--plot_files", plot_files, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise UserError(f"{name} {value}: expected a whole number >= {least}")
    if Path(output).exists() and not Path(output).is_dir():
        raise UserError(f"--output {output}: is a file; expected a folder for the scores, wavs and spectrograms")
    if audio_dir is not None and Path(output).resolve().is_relative_to(Path(audio_dir).resolve()):
        raise UserError(f"--output {output}: inside --audio_dir {audio_dir}; its vocoded clips would be scored as "
                        "recordings next time: expected a folder outside it")
    if mel not in MELS:
        raise UserError(f"--mel {mel}: expected one of {list(MELS)}")
    source = model if isinstance(model, ModelSource) else resolve(model)
    source.check(**options)
    files = evaluation_files(source, audio_dir)[:max_files]
    metric_names = check_metrics(metric_names)
    return evaluate_vocoder(source.load(**options), files, output, source.spec, seed, griffin_lim_iterations,
                            metric_names, plot_files, mel, progress)


def evaluate_vocoder(vocoder, files, output, label: str, seed: int = 0, griffin_lim_iterations: int = 32,
                     metric_names=None, plot_files: int = 3, mel: str = "exact", progress: bool = False) -> dict:
    """`evaluate` for any `wavegrad_tf.runtime.Vocoder` and a list of files."""
    names = check_metrics(metric_names)
    missing = {n: metrics.missing_packages(n) for n in names}
    missing = {n: f"missing: pip install {' '.join(p)}" for n, p in missing.items() if p}
    for name, why in missing.items():
        logging.warning("%s %s", name, why)
    names = [n for n in names if n not in missing]

    files = [Path(f) for f in files]
    cfg = vocoder.metadata.audio
    systems = {"wavegrad": vocoder}
    if griffin_lim_iterations:  # 0: no baseline (a grid of evaluations scores it once)
        systems["griffin_lim"] = GriffinLim(cfg, griffin_lim_iterations)
    output = Path(output)
    (output / "audio").mkdir(parents=True, exist_ok=True)

    rows, skipped, plots = [], [], []
    warm = False
    for index, path in enumerate(progress_bar(files, unit="clip", show=progress)):
        try:
            reference = load_audio(path, cfg.sample_rate)
            check_audio(reference, path, cfg.win_length)
        except AudioError as e:
            logging.warning("skipped %s", e)
            skipped.append({"file": str(path), "reason": e.description})
            continue
        features = log_mel_spectrogram(reference, cfg, use_tf=False)
        if mel == "tts_like":  # every vocoder gets the same TTS-like mel; each is scored against the recording
            features = tts_like(features, seed=index)
        if not warm:  # graph tracing is not vocoding time (two lengths: the trace after a second is shape-generic)
            for frames in (40, 41):
                systems["wavegrad"].vocode(features[:frames], seed)
            warm = True
        row = {"file": str(path), "seconds": len(reference) / cfg.sample_rate, "systems": {}}
        outputs = {"original": reference}
        for key, system in systems.items():
            start = time.perf_counter()
            audio = system.vocode(features, seed)[:len(reference)]
            elapsed = time.perf_counter() - start
            # The index keeps clips of the same name in different folders apart.
            save_wav(output / "audio" / f"{index:03d}-{path.stem}.{key}.wav", audio, cfg.sample_rate)
            row["systems"][key] = {"rtf": elapsed / row["seconds"], **score(audio, reference, cfg, names)}
            outputs[system.name] = audio
        row["systems"]["ground_truth"] = {"rtf": None, **score(reference, reference, cfg, names, ground_truth=True)}
        rows.append(row)
        if len(plots) < plot_files:
            plots.append((path.stem, outputs))
        logging.info("%s: %s", path.name, {k: round(v, 3) for k, v in row["systems"]["wavegrad"].items()
                                            if v is not None})
    if not rows:
        raise UserError(f"no usable clips among {len(files)} files ({len(skipped)} skipped)")

    results = {
        "model": label, "vocoder": vocoder.name,
        "betas": list(vocoder.metadata.betas),
        "seed": seed, "sample_rate": cfg.sample_rate, "griffin_lim_iterations": griffin_lim_iterations, "mel": mel,
        "metrics": {n: {"label": metrics.METRICS[n].label, "better": metrics.METRICS[n].better} for n in names},
        "missing": missing, "skipped": skipped, "files": rows,
        "mean": {s: _means(rows, s, ["rtf", *names]) for s in SYSTEMS if s in rows[0]["systems"]},
    }
    (output / "results.json").write_text(json.dumps(results, indent=1))
    _write_csv(output / "results.csv", rows, names)
    (output / "summary.md").write_text(summary_markdown(results))
    if plots:  # --plot_files 0 asks for none
        spectrogram_grid([o for _, o in plots], cfg, output / "spectrograms.png", [stem for stem, _ in plots])
    return results


def _means(rows, system: str, keys) -> dict:
    """Mean over clips, NaN-free; None where the metric does not apply to this system."""
    out = {}
    for key in keys:
        values = [r["systems"][system][key] for r in rows]
        values = [v for v in values if v is not None and not math.isnan(v)]
        out[key] = float(np.mean(values)) if values else None
    return out


def _write_csv(path: Path, rows, names) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "system", "seconds", "rtf", *names])
        for row in rows:
            for system, values in row["systems"].items():
                writer.writerow([row["file"], system, f"{row['seconds']:.3f}",
                                 *("" if values[k] is None else f"{values[k]:.6g}" for k in ["rtf", *names])])


def summary_markdown(results: dict) -> str:
    labels = {"wavegrad": results["vocoder"],
              "griffin_lim": f"Griffin-Lim ({results['griffin_lim_iterations']} it.)", "ground_truth": "recording"}
    systems = list(results["mean"])
    header = "| metric | better | " + " | ".join(labels[s] for s in systems) + " |"
    lines = [f"# Evaluation of `{results['model']}`", "",
             f"{len(results['files'])} clips, {sum(r['seconds'] for r in results['files']):.1f} s at "
             f"{results['sample_rate']} Hz; seed {results['seed']}; "
             f"{len(results['skipped'])} files skipped. Means over clips.", "", header,
             "|---|---|" + "---|" * len(systems)]

    def cell(value):
        return "-" if value is None else f"{value:.3f}"

    for name, info in results["metrics"].items():
        lines.append(f"| {info['label']} | {info['better']} | "
                     + " | ".join(cell(results["mean"][s][name]) for s in systems) + " |")
    for name, why in results["missing"].items():
        lines.append(f"| {name} | | {why} | | |")
    lines.append("| real-time factor (compute s / audio s) | lower | "
                 + " | ".join(cell(results["mean"][s]["rtf"]) for s in systems) + " |")
    lines += ["", f"Schedule ({len(results['betas'])} steps): {', '.join(f'{b:g}' for b in results['betas'])}"]
    lines += ["", "Per clip: results.csv; spectrograms: spectrograms.png; audio: audio/.", ""]
    return "\n".join(lines)
