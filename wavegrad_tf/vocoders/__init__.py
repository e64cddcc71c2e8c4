"""Every way to vocode behind one interface (`wavegrad_tf.runtime.Vocoder`), picked from what --model names:

    runs/demo, a pretrained name     a training run's Keras network (any schedule, float32 or bfloat16)
    exported/wavegrad[/1]            a SavedModel export (TensorFlow)
    exported/tflite/float16.tflite   a TFLite file (ai-edge-litert; no TensorFlow)
    http://host:8501/v1/models/NAME  TF Serving over REST (no TensorFlow); grpc://host:8500/NAME over gRPC
plus `GriffinLim`, the baseline. Each backend's module imports only what that backend needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from wavegrad_tf import hardware, pretrained, schedules
from wavegrad_tf.config import AudioConfig, Consistency, load_config
from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime import Metadata, Vocoder
from wavegrad_tf.runtime.metadata import FILENAME

MODEL_FORMS = ("a training run folder, a pretrained name, a SavedModel folder, a .tflite file, or a TF Serving "
               "URL (http://HOST:PORT/v1/models/NAME or grpc://HOST:PORT/NAME)")


def is_run(model: str | os.PathLike) -> bool:
    """A training run's folder or a pretrained model: a config and the network's weights."""
    return (pretrained.resolve(model) / "config.yaml").exists()


def load_vocoder(model: str | os.PathLike, schedule=None, iterations: Optional[int] = None,
                 precision: str = "auto", threads: Optional[int] = None, consistency: Optional[dict] = None,
                 timeout: Optional[float] = None) -> Vocoder:
    """The vocoder `model` names. `schedule`, `iterations`, `precision` and `consistency` (a dict of the parts
    of the config's to replace: kind, iterations, steps) apply to training runs (exported graphs have theirs
    baked in); `threads` to TFLite files; `timeout` (seconds per request) to TF Serving."""
    from wavegrad_tf.vocoders.tf_serving import is_serving_url

    spec = str(model)
    if is_run(spec):
        from wavegrad_tf.vocoders.checkpoint import KerasVocoder

        return KerasVocoder.from_run(pretrained.resolve(spec), schedule, iterations, precision,
                                     consistency=consistency)
    _refuse_run_options(spec, schedule, iterations, precision, consistency)
    if is_serving_url(spec):
        from wavegrad_tf.vocoders.tf_serving import ServingVocoder

        return ServingVocoder(spec, *(() if timeout is None else (timeout,)))
    path = Path(spec)
    if path.suffix == ".tflite":
        from wavegrad_tf.vocoders.litert import LiteRTVocoder

        return LiteRTVocoder(path, threads)
    if path.is_dir():
        from wavegrad_tf.vocoders.saved_model import SavedModelVocoder

        return SavedModelVocoder(version_folder(path))
    raise _not_found(spec)


def describe(model: str | os.PathLike, schedule=None, iterations: Optional[int] = None,
             precision: str = "auto", consistency: Optional[dict] = None) -> Optional[AudioConfig]:
    """Checks what `load_vocoder` would be asked, without loading anything (no TensorFlow), and returns the
    features `model` expects; None for a TF Serving URL, whose metadata only the server has."""
    from wavegrad_tf.vocoders.tf_serving import is_serving_url

    spec = str(model)
    if is_run(spec):
        cfg = load_config(pretrained.resolve(spec) / "config.yaml")
        schedules.schedule_for(cfg, iterations, schedule)
        hardware.vocoding_precision(precision, hardware.this_machine())
        Consistency.of(cfg, **(consistency or {}))
        return cfg.audio
    _refuse_run_options(spec, schedule, iterations, precision, consistency)
    if is_serving_url(spec):
        return None
    path = Path(spec)
    if path.suffix == ".tflite":
        from wavegrad_tf.vocoders.litert import check_tflite_file

        if path.is_file():
            check_tflite_file(path)
        return Metadata.load(path.parent / FILENAME).audio
    if path.is_dir():
        return Metadata.load(version_folder(path) / "assets.extra" / FILENAME).audio
    raise _not_found(spec)


def _refuse_run_options(spec: str, schedule, iterations, precision, consistency) -> None:
    if schedule is not None or iterations is not None or precision != "auto" or any(
            v is not None for v in (consistency or {}).values()):
        raise UserError(f"--model {spec}: an exported model has its schedule, precision and consistency baked in; "
                        "re-export it to change them (--schedule, --iterations, --precision and --consistency* "
                        "apply to training runs)")


def version_folder(path: str | os.PathLike) -> Path:
    """A SavedModel version folder, or a model folder's highest version (what TF Serving serves)."""
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted((p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").exists()),
                      key=lambda p: int(p.name)) if path.is_dir() else []
    if not versions:
        raise UserError(f"--model {path}: a folder with no config.yaml (training run), no saved_model.pb and no "
                        f"numbered version folder holding one (SavedModel); expected {MODEL_FORMS}")
    return versions[-1]


def _not_found(spec: str) -> UserError:
    names = pretrained.names()
    return UserError(f"--model {spec}: not found; expected {MODEL_FORMS}"
                     + (f" (pretrained: {', '.join(names)})" if names else ""))
