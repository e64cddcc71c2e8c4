"""Vocode with an exported TFLite / LiteRT graph, without TensorFlow (ai-edge-litert + NumPy + librosa).

    python -m wavegrad_tf.litert --model exported/tflite/float16.tflite --input mel.npy --output out.wav

The input is a log-mel .npy [frames, n_mels] or an audio file (its log-mel computed with librosa, which
matches the TF front end to 1e-3). `wavegrad.json` beside the model gives the feature settings. Input is
checked before invoke; long input is vocoded in overlapping chunks like the Keras path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np
from absl import app, flags

from wavegrad_tf.infer import check_mel, chunked, read_input
from wavegrad_tf.noise import PositionalNoise

FLAGS = flags.FLAGS
# Ops that mean a graph needs TensorFlow (Flex) or kept variables instead of constants.
FORBIDDEN_OPS = ("FlexDelegate", "DELEGATE", "CUSTOM", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")


class LiteRTVocoder:
    def __init__(self, model_path: str | os.PathLike, num_threads: Optional[int] = None):
        from ai_edge_litert.interpreter import Interpreter

        model_path = Path(model_path)
        meta_path = model_path.parent / "wavegrad.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path}: missing (export/tflite.py writes it beside the models)")
        self.meta = json.loads(meta_path.read_text())
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        self.noise_input = "noise" in self.runner.get_input_details()

    def op_names(self) -> list[str]:
        return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})

    def vocode(self, mel: np.ndarray, seed: Optional[int] = None, chunk_frames: int = 128,
               overlap_frames: int = 32) -> np.ndarray:
        """Audio [frames * hop] for a log-mel [frames, n_mels].

        Small chunks by default: the interpreter's memory grows with the chunk while speed barely
        changes (docs/deployment.md).
        """
        hop, steps = self.meta["audio"]["hop_length"], len(self.meta["betas"])
        mel = check_mel(mel, self.meta["audio"]["n_mels"])
        noise = PositionalNoise(seed)

        def synthesize(begin, end):
            inputs = {"mel": mel[None, begin:end]}
            if self.noise_input:
                inputs["noise"] = noise.per_step(steps, begin * hop, (end - begin) * hop)
            return self.runner(**inputs)["audio"][0]

        return chunked(len(mel), hop, synthesize, chunk_frames, overlap_frames)

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """The model's features with librosa (Slaney mel, centred, reflect padding), [frames, n_mels]."""
        import librosa

        a = self.meta["audio"]
        spec = librosa.feature.melspectrogram(
            y=audio, sr=a["sample_rate"], n_fft=a["n_fft"], hop_length=a["hop_length"], win_length=a["win_length"],
            window="hann", center=True, pad_mode="reflect", power=a["power"], n_mels=a["n_mels"], fmin=a["fmin"],
            fmax=a["fmax"])
        return ((np.log(np.maximum(spec, a["log_floor"])) - a["mel_offset"]) / a["mel_scale"]).T.astype(np.float32)


def define_flags():
    """Command-line flags, defined only when run as a script."""
    flags.DEFINE_string("model", None, "A .tflite file written by export/tflite.py.", required=True)
    flags.DEFINE_string("input", None, "A log-mel .npy [frames, n_mels] or an audio file.", required=True)
    flags.DEFINE_string("output", None, "Output .wav path.", required=True)
    flags.DEFINE_integer("seed", None, "Noise seed (models with a noise input).")
    flags.DEFINE_integer("threads", None, "Interpreter threads.")


def main(argv):
    del argv
    from wavegrad_tf.audio import save_wav

    vocoder = LiteRTVocoder(FLAGS.model, FLAGS.threads)
    rate = vocoder.meta["audio"]["sample_rate"]
    mel, length = read_input(FLAGS.input, rate, vocoder.log_mel, vocoder.meta["audio"]["n_mels"])
    out = vocoder.vocode(mel, FLAGS.seed)[:length]
    save_wav(FLAGS.output, out, rate)
    print(f"wrote {FLAGS.output}: {len(out) / rate:.2f} s")


if __name__ == "__main__":
    define_flags()
    app.run(main)
