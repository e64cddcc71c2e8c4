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

LONG_SECONDS = 60.0  # longer input gets a progress line at every tenth


def vocode_file(model, input_path: str, output_path: str, seed: Optional[int] = None,
                chunk_frames: Optional[int] = None, progress=sys.stderr, **options) -> dict:
    """Checks the output path, the options and the input, then loads the model and streams input to output.
    `model`: a `ModelSource` or what names one; `options`: `ModelSource.load`'s."""
    import soundfile as sf

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
    rate, written, start, shown = audio_cfg.sample_rate, 0, time.monotonic(), seconds / 10
    try:
        # A partial of its own (two processes writing one --output never share one), renamed over the output when
        # whole: the output appears whole or not at all.
        with written_whole(output) as partial:
            kind = output.suffix[1:].upper()
            with sf.SoundFile(str(partial), "w", rate, 1, format=kind,
                              subtype="VORBIS" if kind == "OGG" else "PCM_16") as f:
                for piece in vocoder.stream(mels, seed):
                    if samples is not None:  # a recording's length, not its last frame's end
                        piece = piece[:max(0, samples - written)]
                    f.write(piece.clip(-1.0, 1.0))
                    written += len(piece)
                    if progress and seconds > LONG_SECONDS and written / rate >= shown:
                        shown += seconds / 10
                        print(f"vocoded {written / rate:.1f} of {seconds:.1f} s ({(time.monotonic() - start) / (written / rate):.3f}"
                              " s per second of audio)", file=progress, flush=True)
    except sf.LibsndfileError as e:  # libsndfile's own report of a failed write (a full disk, say)
        raise UserError(f"--output {output}: could not be written ({e.error_string}); nothing was kept") from None
    return {"output": str(output), "seconds": written / rate, "iterations": vocoder.metadata.iterations,
            "vocoder": vocoder.name}
