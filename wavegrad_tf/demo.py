"""The end-to-end demo: train `demo` on the bundled speech, vocode a held-out clip, plot the spectrograms.

    python -m wavegrad_tf.demo [--model_dir runs/demo] [--steps 1500]

Writes <model_dir>/demo_original.wav, demo_vocoded.wav and demo_spectrograms.png.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a script (the modules import each other)."""
    flags.DEFINE_string("model_dir", "runs/demo", "Where the demo run goes (a finished run is reused).")
    flags.DEFINE_integer("steps", 1500, "Training steps (about 5 minutes on 2 CPU cores).")
    flags.DEFINE_integer("seed", 0, "Sampling noise seed.")


def main(argv):
    del argv
    from wavegrad_tf import mel, train
    from wavegrad_tf.audio import load_audio, save_wav
    from wavegrad_tf.plots import spectrogram_grid
    from wavegrad_tf.vocoders import load_vocoder

    model_dir = Path(FLAGS.model_dir)
    train.run("demo", str(model_dir), FLAGS.steps)
    vocoder = load_vocoder(model_dir)
    cfg = vocoder.metadata
    held_out = json.loads((model_dir / "data_split.json").read_text())["validation"][0]
    audio = load_audio(held_out, cfg.audio.sample_rate)
    vocoded = vocoder.vocode(mel.log_mel_spectrogram(audio, cfg.audio, use_tf=False), FLAGS.seed)[:len(audio)]
    save_wav(model_dir / "demo_original.wav", audio, cfg.audio.sample_rate)
    save_wav(model_dir / "demo_vocoded.wav", vocoded, cfg.audio.sample_rate)
    spectrogram_grid([{"original (held out)": audio, "WaveGrad, 6 iterations": vocoded}], cfg.audio,
                     model_dir / "demo_spectrograms.png")
    l1 = mel.log_mel_l1(vocoded, audio, cfg.audio, use_tf=False)
    print(f"held-out clip {held_out}\nlog-mel L1 vocoded vs original: {l1:.3f}\n"
          f"wrote {model_dir}/demo_vocoded.wav, demo_original.wav, demo_spectrograms.png")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run(main)
