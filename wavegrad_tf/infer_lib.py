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


def vocode_file(model, input_path: str, output_path: str, seed: Optional[int] = None,
                chunk_frames: Optional[int] = None, progress=sys.stderr, **options) -> dict:
    """Checks the output path, the options and the input, then loads the model and streams input to output.
    `model`: a `ModelSource` or what names one; `options`: `ModelSource.load`'s."""
    from wavegrad_tf.runtime import PositionalNoise, check_output, open_input
    from wavegrad_tf.vocoders import ModelSource, resolve

    output = check_output(output_path, inputs=[input_path])
    PositionalNoise(seed)  # a seed it cannot take is refused before any work
    source = model if isinstance(model, ModelSource) else resolve(model)
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
    this one process: the model loads and traces once. Outputs already there are skipped (each is written whole or
    not at all, so a killed job goes on where it stopped); an input that fails is reported and skipped. Item i's
    noise seed is keyed by its relative path (`keyed_seed`): the same audio alone, in any order or batch. Returns
    the report (also written to <output>/report.json)."""
    import numpy as np

    from wavegrad_tf import corpus
    from wavegrad_tf.runtime import PositionalNoise, open_input
    from wavegrad_tf.runtime.batches import vocode_items
    from wavegrad_tf.runtime.noise import keyed_seed
    from wavegrad_tf.vocoders import ModelSource, resolve

    folder = corpus.check_output_folder(output, inputs)
    items = corpus.items(inputs)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UserError(f"--batch_size {batch_size}: expected a whole number >= 1")
    seed = PositionalNoise(seed).seed  # a seed is drawn once for the job if none is given, and reported
    source = model if isinstance(model, ModelSource) else resolve(model)
    source.check(**options)
    audio_cfg = source.audio_cfg
    todo = [item for item in items if not item.output(folder).exists()]
    report = {"model": source.spec, "inputs": inputs, "seed": seed, "files": len(items), "skipped": len(items) - len(todo),
              "vocoded": 0, "audio_seconds": 0.0, "failed": [], "path": str(folder / corpus.REPORT)}
    start = time.monotonic()
    if todo:
        vocoder = source.load(**options)
        if chunk_frames is not None:
            vocoder.set_chunk_frames(chunk_frames)
        report["vocoder"] = vocoder.name

        def readable():
            for item in todo:
                try:
                    mels, samples, _ = open_input(item.source, audio_cfg)
                    mel = np.concatenate(list(mels))
                except UserError as e:
                    report["failed"].append({"file": str(item.source), "error": str(e)})
                    continue
                yield (item, samples), mel, keyed_seed(seed, item.key)

        with progress_bar(total=len(todo), unit="file", show=progress) as bar:
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
    report["seconds"] = time.monotonic() - start
    folder.mkdir(parents=True, exist_ok=True)
    corpus.write_report(folder, report)
    return report


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
