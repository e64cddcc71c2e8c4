"""A TFLite / LiteRT file (export/tflite.py) run with ai-edge-litert's CompiledModel: no TensorFlow needed.

The file has one static-shape signature per chunk size (`frames_<n>`). The first chunk uses the smallest
(first audio sooner), the others the largest; a short last chunk uses the smallest size that holds it,
padded with silence and trimmed. A signature's buffers are created on first use, so memory holds only the
arenas of the sizes a stream needs.

XNNPACK packs each operator's weights for its kernels. The graph unrolls the sampler, so every step's
operators read the same weights; without a weight cache each operator packs its own copy (Base: six copies,
1.2 GB at 80 frames instead of 0.26 GB). The in-memory weight cache packs each weight once, except in a
full int8 graph: there packing also folds in each operator's input quantization, which differs from step to
step, and one shared packing gave wrong audio (twice too loud); its int8 weights are small to copy anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import mmap
import os
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Optional

import numpy as np

from wavegrad_tf import hardware, mel as mel_lib
from wavegrad_tf.runtime import Metadata, MetadataError, PositionalNoise, Vocoder
from wavegrad_tf.runtime.metadata import FILENAME
from wavegrad_tf.vocoders.source import ModelSource

# Ops that mean a graph needs TensorFlow (Flex) or kept variables instead of constants.
FORBIDDEN_OPS = ("FlexDelegate", "DELEGATE", "CUSTOM", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")
# Ops a dynamic frame axis leaves in the graph (unfolded dilated convolutions, shape arithmetic).
DYNAMIC_SHAPE_OPS = ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "SHAPE", "FLOOR_MOD")
# XNNPACK's special path for a weight cache that lives in memory (no file written).
IN_MEMORY_WEIGHT_CACHE = ":memory"


@contextlib.contextmanager
def _native_log_captured():
    """LiteRT logs a dozen INFO lines (accelerator and vendor plugin discovery) to the process's stderr and
    has no switch for it (google-ai-edge/LiteRT#7420): they are captured and shown only on failure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except Exception as error:
            os.dup2(saved, 2)
            log.seek(0)
            raise MetadataError(f"LiteRT could not load the model: {error}\n"
                                f"{log.read().decode(errors='replace')[-2000:]}") from error
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _silence_teardown():
    """LiteRT's global environment logs its teardown after Python's last output: sent to /dev/null."""
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


# Registered at import, so it runs after the atexit handlers of anything imported later.
atexit.register(_silence_teardown)


def _release(native: list):
    """Drops a model's native objects with their teardown log captured."""
    with _native_log_captured():
        native.clear()


def computes_in_int8(path: str | os.PathLike) -> bool:
    """Whether the graph's activations are int8 (full integer quantization), not only some of its weights."""
    from ai_edge_litert import schema_py_generated as schema

    # Mapped, not read: only the tensor tables are touched, never the weights.
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        model = schema.Model.GetRootAs(data, 0)
        graphs = (model.Subgraphs(i) for i in range(model.SubgraphsLength()))
        return any(t.Type() == schema.TensorType.INT8 and not model.Buffers(t.Buffer()).DataLength()
                   for g in graphs for t in (g.Tensors(j) for j in range(g.TensorsLength())))


def compile_model(path: str | os.PathLike, threads: Optional[int] = None):
    """An ai_edge_litert CompiledModel on the CPU (XNNPACK), with the in-memory weight cache unless the graph
    computes in int8. `threads` defaults to the CPUs this process may use (affinity mask, cgroup quota)."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.options import CpuOptions, Options

    cache = "" if computes_in_int8(path) else IN_MEMORY_WEIGHT_CACHE
    options = Options(cpu_options=CpuOptions(num_threads=threads or hardware.usable_cpus(), xnnpack_weight_cache_path=cache))
    with _native_log_captured():
        return CompiledModel.from_file(str(path), options=options)


def check_tflite_file(path: Path) -> None:
    """A .tflite flatbuffer, by its file identifier: an empty, cut or text file is refused before any parsing."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise MetadataError(f"--model {path}: not a TFLite file ({len(head)}-byte start {head[:8]!r}, no TFL3 "
                            "identifier); expected a .tflite written by export.tflite")


class LiteRTVocoder(Vocoder):
    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None, metadata: Optional[Metadata] = None):
        """`metadata`: the wavegrad.json beside the file, if the caller read it already."""
        path = Path(path)
        if not path.is_file():
            raise MetadataError(f"--model {path}: no such file")
        check_tflite_file(path)
        meta_path = path.parent / FILENAME
        self.metadata = metadata or Metadata.load(meta_path)
        # The only reference to the native objects: dropped together, with their teardown log captured.
        self._native = [compile_model(path, threads), {}]
        weakref.finalize(self, _release, self._native)
        signatures = self.compiled.get_signature_list()
        sizes = tuple(sorted(int(k.split("_")[1]) for k in signatures if k.startswith("frames_")))
        if not sizes or sizes != tuple(self.metadata.signature_frames):
            raise MetadataError(f"{meta_path}: lists signature sizes {list(self.metadata.signature_frames)}, but {path.name} "
                                f"has signatures {sorted(signatures)}: the two come from different exports")
        n_mels = int(self.compiled.get_input_tensor_details(f"frames_{sizes[0]}")["mel"]["shape"][-1])
        if n_mels != self.metadata.audio.n_mels:
            raise MetadataError(f"{meta_path}: says {self.metadata.audio.n_mels} mel bins, but {path.name} takes "
                                f"{n_mels}: the two come from different exports")
        self.sizes = sizes
        # One set of I/O buffers per signature: calls from several threads take turns (they overwrote each
        # other's inputs: relative L2 up to 1.14 against the sequential result, with no error).
        self._lock = threading.Lock()
        self.first_chunk_frames, self.chunk_frames = sizes[0], sizes[-1]
        with _native_log_captured():  # the first buffer write creates LiteRT's global environment
            self._buffers(sizes[0])[1]["mel"].write(np.zeros((1, sizes[0], n_mels), np.float32))
        self.name = f"WaveGrad {path.stem} TFLite ({self.metadata.iterations} steps)"

    def largest_chunk_frames(self) -> int:
        return self.sizes[-1]

    @property
    def compiled(self):
        """LiteRT's CompiledModel of the file."""
        return self._native[0]

    def _buffers(self, size: int):
        """(signature index, {input name: buffer}, audio buffer) of the `frames_<size>` signature."""
        buffers = self._native[1]
        if size not in buffers:
            key = f"frames_{size}"
            index = self.compiled.get_signature_index(key)
            names = self.compiled.get_signature_list()[key]["inputs"]
            inputs = dict(zip(names, self.compiled.create_input_buffers(index)))
            buffers[size] = index, inputs, self.compiled.create_output_buffers(index)
        return buffers[size]

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        frames, hop = len(mel), self.metadata.audio.hop_length
        size = next((n for n in self.sizes if n >= frames), self.sizes[-1])
        if frames > size:
            raise ValueError(f"chunk of {frames} frames: the largest signature holds {size}")
        padded = np.full((1, size, mel.shape[1]), mel_lib.silence(self.metadata.audio), np.float32)
        padded[0, :frames] = mel
        drawn = noise.per_step(self.metadata.iterations, start_sample, size * hop)
        with self._lock:
            index, inputs, outputs = self._buffers(size)
            inputs["mel"].write(padded)
            inputs["noise"].write(drawn)
            self.compiled.run_by_index(index, list(inputs.values()), outputs)
            return outputs[0].read(size * hop, np.float32)[:frames * hop]


class TFLiteSource(ModelSource):
    kind = "tflite"
    description = "a .tflite file (export.tflite's, its wavegrad.json beside it)"
    options = ("threads",)

    @classmethod
    def claim(cls, spec: str, flag: str):
        return cls(spec, flag) if Path(spec).suffix == ".tflite" else None

    @functools.cached_property
    def metadata(self) -> Metadata:
        """The wavegrad.json beside the file, read once per load."""
        path = Path(self.spec)
        if path.is_file():
            check_tflite_file(path)
        return Metadata.load(path.parent / FILENAME)

    @property
    def audio_cfg(self):
        return self.metadata.audio

    def load(self, threads=None, **others) -> LiteRTVocoder:
        return LiteRTVocoder(self.spec, threads, self.metadata)
