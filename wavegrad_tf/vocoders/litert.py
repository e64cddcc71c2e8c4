"""A TFLite / LiteRT file (export/tflite.py) run with ai-edge-litert: no TensorFlow needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from wavegrad_tf.runtime import Metadata, MetadataError, PositionalNoise, Vocoder
from wavegrad_tf.runtime.metadata import FILENAME

# Ops that mean a graph needs TensorFlow (Flex) or kept variables instead of constants.
FORBIDDEN_OPS = ("FlexDelegate", "DELEGATE", "CUSTOM", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")


class LiteRTVocoder(Vocoder):
    # Small chunks: the interpreter's memory grows with the chunk while speed barely changes (docs/deployment.md).
    chunk_frames = 128

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None):
        path = Path(path)
        if not path.is_file():
            raise MetadataError(f"--model {path}: no such file")
        self.metadata = Metadata.load(path.parent / FILENAME)
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        inputs = self.runner.get_input_details()
        self.noise_input = "noise" in inputs
        n_mels = int(inputs["mel"]["shape"][-1])
        if n_mels != self.metadata.audio.n_mels:
            raise MetadataError(f"{path.parent / FILENAME}: says {self.metadata.audio.n_mels} mel bins, but "
                                f"{path.name} takes {n_mels}: the two come from different exports")
        self.name = f"WaveGrad {path.stem} TFLite ({self.metadata.iterations} steps)"

    def op_names(self) -> list[str]:
        return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        inputs = {"mel": mel[None]}
        if self.noise_input:
            inputs["noise"] = noise.per_step(self.metadata.iterations, start_sample,
                                             len(mel) * self.metadata.audio.hop_length)
        return self.runner(**inputs)["audio"][0]
