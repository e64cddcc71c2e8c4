"""Vocode a mel or resynthesise a recording with any model: python -m wavegrad_tf.infer --model M --input I --output O.

--model is a training run folder, a pretrained name, a SavedModel folder, a .tflite file or a TF Serving
URL (see `wavegrad_tf.vocoders`); the last two need no TensorFlow. --input is a .npy log-mel
[frames, n_mels] (e.g. from a TTS model, with the model's feature settings) or an audio file, analysed
with the model's own front end. Input of any length is read, analysed, vocoded and written as a stream,
so memory does not grow with it; the output appears only when it is complete.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from absl import flags

from wavegrad_tf import cli
from wavegrad_tf.errors import UserError
from wavegrad_tf.hardware import VOCODING_PRECISIONS

FLAGS = flags.FLAGS
LONG_SECONDS = 60.0  # longer input gets a progress line at every tenth


def define_flags():
    flags.DEFINE_string("model", None, "A training run folder, a pretrained name, a SavedModel folder, a .tflite "
                        "file or a TF Serving URL (http://HOST:PORT/v1/models/NAME, grpc://HOST:PORT/NAME).",
                        required=True)
    flags.DEFINE_string("input", None, "A .npy log-mel [frames, n_mels] or a wav/flac/ogg file.", required=True)
    flags.DEFINE_string("output", None, "Output wav/flac/ogg path.", required=True)
    flags.DEFINE_integer("iterations", None, "Sampling steps: the preset schedule with this many (training runs).")
    flags.DEFINE_string("schedule", None, "Preset name (manual-6, fibonacci-25, linear-50, linear-1000) or a file "
                        "of betas (training runs); default: the config's inference_schedule.")
    flags.DEFINE_enum("precision", "auto", list(VOCODING_PRECISIONS), "Compute precision (training runs): "
                      "auto is float32; bfloat16 is faster where the CPU has AVX512-BF16 or AMX, at some quality.")
    flags.DEFINE_integer("seed", None, "Noise seed, for reproducible output.")
    flags.DEFINE_integer("chunk_frames", None, "Mel frames vocoded at a time; default: the backend's.")
    flags.DEFINE_integer("threads", None, "Interpreter threads (.tflite).")
    flags.DEFINE_float("timeout", 60.0, "Seconds a TF Serving request may take before infer gives up.")
    cli.define_consistency_flags()


def vocode_file(model: str, input_path: str, output_path: str, iterations: Optional[int] = None, schedule=None,
                precision: str = "auto", seed: Optional[int] = None, chunk_frames: Optional[int] = None,
                threads: Optional[int] = None, progress=sys.stderr, consistency: Optional[dict] = None,
                timeout: Optional[float] = None) -> dict:
    """Checks the output path and the input, then loads the model and streams input to output."""
    import soundfile as sf

    from wavegrad_tf.runtime import PositionalNoise, check_output, open_input
    from wavegrad_tf.vocoders import describe, load_vocoder

    output = check_output(output_path, inputs=[input_path])
    PositionalNoise(seed)  # a seed it cannot take is refused before any work
    audio_cfg = describe(model, schedule, iterations, precision, consistency)
    vocoder = None
    if audio_cfg is None:  # a TF Serving model: only the server knows its features
        vocoder = load_vocoder(model, timeout=timeout)
        audio_cfg = vocoder.metadata.audio
    mels, samples, seconds = open_input(input_path, audio_cfg)
    vocoder = vocoder or load_vocoder(model, schedule, iterations, precision, threads, consistency)
    if chunk_frames is not None:
        vocoder.set_chunk_frames(chunk_frames)
    rate, written, start, shown = audio_cfg.sample_rate, 0, time.monotonic(), seconds / 10
    # A name of its own: two processes writing one --output never share a partial file.
    handle, partial = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    os.close(handle)
    partial = Path(partial)
    try:
        kind = output.suffix[1:].upper()
        with sf.SoundFile(str(partial), "w", rate, 1, format=kind, subtype="VORBIS" if kind == "OGG" else "PCM_16") as f:
            for piece in vocoder.stream(mels, seed):
                if samples is not None:  # a recording's length, not its last frame's end
                    piece = piece[:max(0, samples - written)]
                f.write(piece.clip(-1.0, 1.0))
                written += len(piece)
                if progress and seconds > LONG_SECONDS and written / rate >= shown:
                    shown += seconds / 10
                    print(f"vocoded {written / rate:.1f} of {seconds:.1f} s ({(time.monotonic() - start) / (written / rate):.3f}"
                          " s per second of audio)", file=progress, flush=True)
        os.replace(partial, output)  # the output appears whole or not at all
    except sf.LibsndfileError as e:  # libsndfile's own report of a failed write (a full disk, say)
        raise UserError(f"--output {output}: could not be written ({e.error_string}); nothing was kept") from None
    finally:
        partial.unlink(missing_ok=True)
    return {"output": str(output), "seconds": written / rate, "iterations": vocoder.metadata.iterations,
            "vocoder": vocoder.name}


def main(argv):
    del argv
    result = vocode_file(FLAGS.model, FLAGS.input, FLAGS.output, FLAGS.iterations, FLAGS.schedule, FLAGS.precision,
                         FLAGS.seed, FLAGS.chunk_frames, FLAGS.threads, consistency=cli.consistency_flags(),
                         timeout=FLAGS.timeout)
    print(f"wrote {result['output']}: {result['seconds']:.2f} s, {result['iterations']} iterations, "
          f"{result['vocoder']}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run(main)
