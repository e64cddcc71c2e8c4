"""A TFLite / LiteRT file (export/tflite.py) run with ai-edge-litert: no TensorFlow needed.

The file has one static-shape signature per chunk size (`frames_<n>`). The first chunk uses the smallest
(first audio sooner), the others the largest; a short last chunk uses the smallest size that holds it,
padded with silence and trimmed. Signatures are allocated on first use, so memory holds only the arenas
of the sizes a stream needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from wavegrad_tf import mel as mel_lib
from wavegrad_tf.runtime import Metadata, MetadataError, PositionalNoise, Vocoder
from wavegrad_tf.runtime.metadata import FILENAME

# Ops that mean a graph needs TensorFlow (Flex) or kept variables instead of constants.
FORBIDDEN_OPS = ("FlexDelegate", "DELEGATE", "CUSTOM", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")
# Ops a dynamic frame axis leaves in the graph (unfolded dilated convolutions, shape arithmetic).
DYNAMIC_SHAPE_OPS = ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "SHAPE", "FLOOR_MOD")


class LiteRTVocoder(Vocoder):
    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None):
        path = Path(path)
        if not path.is_file():
            raise MetadataError(f"--model {path}: no such file")
        meta_path = path.parent / FILENAME
        self.metadata = Metadata.load(meta_path)
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        signatures = self.interpreter.get_signature_list()
        sizes = tuple(sorted(int(k.split("_")[1]) for k in signatures if k.startswith("frames_")))
        if not sizes or sizes != tuple(self.metadata.chunk_frames):
            raise MetadataError(f"{meta_path}: lists chunk sizes {list(self.metadata.chunk_frames)}, but {path.name} "
                                f"has signatures {sorted(signatures)}: the two come from different exports")
        n_mels = int(self.interpreter.get_signature_runner(f"frames_{sizes[0]}").get_input_details()["mel"]["shape"][-1])
        if n_mels != self.metadata.audio.n_mels:
            raise MetadataError(f"{meta_path}: says {self.metadata.audio.n_mels} mel bins, but {path.name} takes "
                                f"{n_mels}: the two come from different exports")
        self.sizes, self.runners = sizes, {}
        self.first_chunk_frames, self.chunk_frames = sizes[0], sizes[-1]
        self.name = f"WaveGrad {path.stem} TFLite ({self.metadata.iterations} steps)"

    def op_names(self) -> list[str]:
        return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        frames, hop = len(mel), self.metadata.audio.hop_length
        size = next((n for n in self.sizes if n >= frames), self.sizes[-1])
        if frames > size:
            raise ValueError(f"chunk of {frames} frames: the largest signature holds {size}")
        if size not in self.runners:
            self.runners[size] = self.interpreter.get_signature_runner(f"frames_{size}")
        padded = np.full((1, size, mel.shape[1]), mel_lib.silence(self.metadata.audio), np.float32)
        padded[0, :frames] = mel
        audio = self.runners[size](mel=padded, noise=noise.per_step(self.metadata.iterations, start_sample,
                                                                    size * hop))["audio"][0]
        return audio[:frames * hop]
