"""Vocode a mel or resynthesise a recording with any model, streamed from input to output (`python -m
wavegrad_tf.infer` is the command line): memory does not grow with the input, and the output appears only when
it is complete."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

from wavegrad_tf.errors import UserError
from wavegrad_tf.files import written_whole
from wavegrad_tf.progress import bar as progress_bar

LONG_SECONDS = 60.0  # longer input gets a progress line at every tenth
# What a model that can sample either way does with a mel from elsewhere (a .npy: a TTS model's), unless
# --consistency says: on TTS-like mels the projection onto the mel lowered PESQ and DNSMOS (docs/evaluation.md).
TTS_CONSISTENCY = "none"


def is_mel(path) -> bool:
    """A mel from elsewhere (a TTS model's .npy), not a recording analysed with the model's own front end."""
    return str(path).lower().endswith(".npy")


def per_use(source, options: dict, mels_only: bool, say=print) -> dict:
    """`options` with the consistency this use gets: --consistency if given; for mels from elsewhere (`mels_only`)
    the network alone, said with the reason; otherwise the model's config's (its projection, made for a
    recording's own mel). Exports hold theirs in the graph and keep it."""
    run = getattr(source, "run", None)  # a run or pretrained model: its sampler takes any consistency
    if options.get("consistency") is not None or run is None or not mels_only:
        return options
    configured = run.config.diffusion.consistency
    if configured == TTS_CONSISTENCY:
        return options
    say(f"consistency: {TTS_CONSISTENCY} (.npy mels, as a TTS model makes them: the {configured} projection assumes a "
        f"recording's exact mel and scored lower there, docs/evaluation.md; --consistency {configured} to use it)")
    return {**options, "consistency": {"kind": TTS_CONSISTENCY}}


def vocode_file(model, input_path: str, output_path: str, seed: Optional[int] = None,
                chunk_frames: Optional[int] = None, progress=sys.stderr, **options) -> dict:
    """Checks the output path, the options and the input, then loads the model and streams input to output.
    `model`: a `ModelSource` or what names one; `options`: `ModelSource.load`'s."""
    from wavegrad_tf.runtime import PositionalNoise, check_output, open_input
    from wavegrad_tf.vocoders import ModelSource, resolve

    output = check_output(output_path, inputs=[input_path])
    PositionalNoise(seed)  # a seed it cannot take is refused before any work
    source = model if isinstance(model, ModelSource) else resolve(model)
    options = per_use(source, options, is_mel(input_path))
    source.check(**options)
    audio_cfg = source.audio_cfg
    mels, samples, seconds = open_input(input_path, audio_cfg)
    vocoder = source.load(**options)
    if chunk_frames is not None:
        vocoder.set_chunk_frames(chunk_frames)
    rate, start, shown = audio_cfg.sample_rate, time.monotonic(), [seconds / 10]

    def report(written: int) -> None:
        if progress and seconds > LONG_SECONDS and written / rate >= shown[0]:
            shown[0] += seconds / 10
            print(f"vocoded {written / rate:.1f} of {seconds:.1f} s ({(time.monotonic() - start) / (written / rate):.3f}"
                  " s per second of audio)", file=progress, flush=True)

    written = write_audio(output, vocoder.stream(mels, seed), rate, samples, report)
    return {"output": str(output), "seconds": written / rate, "iterations": vocoder.metadata.iterations,
            "vocoder": vocoder.name}


def vocode_corpus(model, inputs: str, output: str, seed: Optional[int] = None, batch_size: Optional[int] = None,
                  chunk_frames: Optional[int] = None, progress: bool = True, **options) -> dict:
    """Vocodes every input `inputs` names (`wavegrad_tf.corpus`) into `output`, mirroring their relative paths, in
    this one process: the model loads and traces once (once for recordings and once for mels where they sample
    differently, `per_use`). Outputs already there are skipped (each is written whole or
    not at all, so a killed job goes on where it stopped); an input that fails is reported and skipped. Item i's
    noise seed is keyed by its relative path (`keyed_seed`): the same audio alone, in any order or batch. Returns
    the report (also written to <output>/report.json)."""
    from wavegrad_tf import corpus
    from wavegrad_tf.runtime import PositionalNoise
    from wavegrad_tf.vocoders import ModelSource, resolve

    folder = corpus.check_output_folder(output, inputs)
    items = corpus.items(inputs)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UserError(f"--batch_size {batch_size}: expected a whole number >= 1")
    seed = PositionalNoise(seed).seed  # a seed is drawn once for the job if none is given, and reported
    source = model if isinstance(model, ModelSource) else resolve(model)
    # Recordings and mels may sample differently (`per_use`): each kind is vocoded as infer vocodes it alone, one
    # load per distinct choice.
    plans = {}
    for mels in sorted({is_mel(item.source) for item in items}):
        chosen = per_use(source, options, mels)
        plans.setdefault(repr(sorted(chosen.items())), (chosen, set()))[1].add(mels)
    for chosen, _ in plans.values():
        source.check(**chosen)
    todo = [item for item in items if not item.output(folder).exists()]
    report = {"model": source.spec, "inputs": inputs, "seed": seed, "files": len(items), "skipped": len(items) - len(todo),
              "vocoded": 0, "audio_seconds": 0.0, "failed": [], "path": str(folder / corpus.REPORT)}
    start = time.monotonic()
    with progress_bar(total=len(todo), unit="file", show=progress) as bar:
        for chosen, kinds in plans.values():
            group = [item for item in todo if is_mel(item.source) in kinds]
            if group:
                _vocode_group(source.load(**chosen), group, folder, seed, batch_size, chunk_frames, report, bar)
    report["seconds"] = time.monotonic() - start
    folder.mkdir(parents=True, exist_ok=True)
    corpus.write_report(folder, report)
    return report


def _vocode_group(vocoder, todo, folder, seed, batch_size, chunk_frames, report, bar) -> None:
    """vocode_corpus's work for inputs of one kind, with their vocoder."""
    import numpy as np

    from wavegrad_tf.runtime import open_input
    from wavegrad_tf.runtime.batches import vocode_items
    from wavegrad_tf.runtime.noise import keyed_seed

    audio_cfg = vocoder.metadata.audio
    if chunk_frames is not None:
        vocoder.set_chunk_frames(chunk_frames)
    report["vocoder"] = " and ".join(filter(None, [report.get("vocoder"), vocoder.name]))

    def readable():
        for item in todo:
            try:
                mels, samples, _ = open_input(item.source, audio_cfg)
                mel = np.concatenate(list(mels))
            except UserError as e:
                report["failed"].append({"file": str(item.source), "error": str(e)})
                continue
            yield (item, samples), mel, keyed_seed(seed, item.key)

    for (item, samples), audio in vocode_items(vocoder, readable(), batch_size):
        if isinstance(audio, Exception):
            report["failed"].append({"file": str(item.source), "error": str(audio)})
        else:
            target = item.output(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            written = write_audio(target, [audio], audio_cfg.sample_rate, samples)
            report["vocoded"] += 1
            report["audio_seconds"] += written / audio_cfg.sample_rate
        bar.update(1)
        bar.set_postfix(audio=f"{report['audio_seconds']:.0f}s", failed=len(report["failed"]), refresh=False)


def write_audio(output: Path, pieces, rate: int, samples: Optional[int] = None, progress=None) -> int:
    """Writes consecutive pieces of audio to `output` (its format from its extension), cut at `samples` (a
    recording's length, not its last frame's end); returns the samples written. A partial file of its own (two
    processes writing one output never share one) is renamed over the output when whole: the output appears whole
    or not at all. `progress(written)` is called after each piece."""
    import soundfile as sf

    written, kind = 0, output.suffix[1:].upper()
    try:
        with written_whole(output) as partial, sf.SoundFile(str(partial), "w", rate, 1, format=kind,
                                                            subtype="VORBIS" if kind == "OGG" else "PCM_16") as f:
            for piece in pieces:
                if samples is not None:
                    piece = piece[:max(0, samples - written)]
                f.write(piece.clip(-1.0, 1.0))
                written += len(piece)
                if progress:
                    progress(written)
    except sf.LibsndfileError as e:  # libsndfile's own report of a failed write (a full disk, say)
        raise UserError(f"--output {output}: could not be written ({e.error_string}); nothing was kept") from None
    return written
