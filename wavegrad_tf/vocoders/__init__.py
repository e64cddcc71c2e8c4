"""Every way to vocode behind one interface (`wavegrad_tf.runtime.Vocoder`), and what --model names, resolved once
into a `ModelSource`:

    runs/demo, a pretrained name     a training run's Keras network (any schedule, float32 or bfloat16)
    exported/wavegrad[/1]            a SavedModel export (TensorFlow)
    exported/tflite/float16.tflite   a TFLite file (ai-edge-litert; no TensorFlow)
    http://host:8501/v1/models/NAME  TF Serving over REST (no TensorFlow); grpc://host:8500/NAME over gRPC
plus `GriffinLim`, the baseline. Each backend's module defines its source and imports what that backend needs
only when it loads. A new backend: a module with a `Vocoder` and a `ModelSource`, and a line in `SOURCES`.
"""

from __future__ import annotations

import os
from typing import Optional

from wavegrad_tf import pretrained
from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime import Vocoder
from wavegrad_tf.vocoders.source import ModelSource

def _sources() -> tuple:
    # The registry: one line per backend, tried in this order (a run's folder before any other folder). Imported
    # here, not at the top: each backend's module is imported only when --model is resolved.
    from wavegrad_tf.vocoders import checkpoint, litert, saved_model, tf_serving

    return (checkpoint.RunSource, tf_serving.ServingSource, litert.TFLiteSource, saved_model.SavedModelSource)


def model_forms(kinds: Optional[tuple] = None) -> str:
    """What --model may name, from the registry (its help text, and the end of its not-found error)."""
    return "; ".join(s.description for s in _sources() if kinds is None or s.kind in kinds)


def resolve(spec: str | os.PathLike, flag: str = "--model", kinds: Optional[tuple] = None) -> ModelSource:
    """The source `spec` names, of one of `kinds` (default: any)."""
    spec = str(spec)
    for source in _sources():
        found = source.claim(spec, flag)
        if found is not None:
            if kinds is not None and found.kind not in kinds:
                raise UserError(f"{flag} {spec}: a {found.kind.replace('_', ' ')}; expected {model_forms(kinds)}")
            return found
    names = pretrained.names()
    raise UserError(f"{flag} {spec}: not found; expected {model_forms(kinds)}"
                    + (f" (pretrained: {', '.join(names)})" if names else ""))


def load_vocoder(model: str | os.PathLike, **options) -> Vocoder:
    """The vocoder `model` names (`resolve(model).load(**options)`): options schedule, iterations, precision and
    consistency (a dict of the parts of the config's to replace: kind, iterations, steps) for training runs,
    threads for TFLite files, timeout for TF Serving."""
    source = resolve(model)
    source.check(**options)
    return source.load(**options)
