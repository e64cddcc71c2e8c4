"""The corpus job of `infer --input MANY` as an Apache Beam pipeline (`python -m wavegrad_tf.beam` is its command
line): Beam's runners carry it to Dataflow, Flink or Spark; nothing here schedules work across machines.

    inputs  ->  read (skip outputs already there, decode, log-mel)  ->  RunInference(VocoderHandler)
            ->  write each output whole  ->  <output>/manifest.jsonl (a line per input: written, or why not)

Each worker loads the model once (`VocoderHandler.load_model`, any model source: a run, a pretrained name, a
SavedModel, a .tflite file, a TF Serving URL) and vocodes Beam's batches with `runtime.batches.vocode_items`, as
the folder mode does: each item's noise keyed by its relative path, each padded to its own bucket, so a file's
audio is the folder mode's, bit for bit, whichever worker and batch it lands in. Local inputs are listed and read
as the folder mode reads them (`wavegrad_tf.corpus`); a URL (gs://...) is matched and read through Beam's
FileSystems.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, RunInference

from wavegrad_tf import corpus
from wavegrad_tf.errors import UserError

MANIFEST = "manifest.jsonl"


def _remote(path: str) -> bool:
    return "://" in str(path)


def listed(spec: str) -> list[tuple[str, str]]:
    """(source, key) of every input: the folder mode's listing for local inputs, FileSystems.match for a URL (its
    keys relative to the part before the first wildcard)."""
    if not _remote(spec):
        return [(str(item.source), item.key) for item in corpus.items(spec)]
    pattern = spec if any(c in spec for c in "*?[") else spec.rstrip("/") + "/**"
    root = pattern[:min(pattern.index(c) for c in "*?[" if c in pattern)].rsplit("/", 1)[0]
    found = [m.path for m in FileSystems.match([pattern])[0].metadata_list
             if os.path.splitext(m.path)[1].lower() in corpus.INPUT_EXTENSIONS]
    if not found:
        raise UserError(f"--input {spec}: names no {'/'.join(corpus.INPUT_EXTENSIONS)} file")
    return [(path, path[len(root):].lstrip("/")) for path in sorted(found)]


def target(output: str, key: str) -> str:
    return FileSystems.join(output, str(Path(key).with_suffix(".wav")))


class Read(beam.DoFn):
    """(source, key) -> (key, mel, seed, samples), or to the `failed` output (key, error). Outputs already there are
    skipped (counted), so a pipeline run again vocodes only what is missing."""

    def __init__(self, model: str, output: str, seed: int):
        self.model, self.output, self.seed, self.audio_cfg = model, output, seed, None

    def setup(self):
        from wavegrad_tf.vocoders import resolve

        self.audio_cfg = resolve(self.model).audio_cfg

    def process(self, element):
        import numpy as np

        from wavegrad_tf.runtime import open_input
        from wavegrad_tf.runtime.noise import keyed_seed

        source, key = element
        if FileSystems.exists(target(self.output, key)):
            beam.metrics.Metrics.counter("wavegrad", "skipped").inc()
            return
        try:
            with _local_copy(source) as path:
                mels, samples, _ = open_input(path, self.audio_cfg)
                mel = np.concatenate(list(mels))
        except UserError as e:
            yield beam.pvalue.TaggedOutput("failed", {"file": key, "error": str(e)})
            return
        yield key, mel, keyed_seed(self.seed, key), samples


class _local_copy:
    """A local path for `source`: itself, or a temporary copy of a remote file (the front end streams a file)."""

    def __init__(self, source: str):
        self.source, self.tmp = source, None

    def __enter__(self) -> str:
        if not _remote(self.source):
            return self.source
        self.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(self.tmp.name, os.path.basename(self.source))
        with FileSystems.open(self.source) as f, open(path, "wb") as out:
            out.write(f.read())
        return path

    def __exit__(self, *exc):
        if self.tmp:
            self.tmp.cleanup()


class VocoderHandler(ModelHandler):
    """RunInference's handler over the project's model sources: (key, mel, seed, samples) -> (that, audio or the
    exception that stopped it)."""

    def __init__(self, model: str, batch_size: Optional[int] = None, **options):
        self.model, self.batch_size, self.options = model, batch_size, options

    def load_model(self):
        from wavegrad_tf.vocoders import load_vocoder

        return load_vocoder(self.model, **self.options)

    def run_inference(self, batch, model, inference_args=None):
        from wavegrad_tf.runtime.batches import vocode_items

        return list(vocode_items(model, ((example, example[1], example[2]) for example in batch), self.batch_size))

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 64}

    def get_metrics_namespace(self) -> str:
        return "wavegrad"


class Write(beam.DoFn):
    """((key, mel, seed, samples), audio) -> its manifest line, after writing the audio whole."""

    def __init__(self, output: str, sample_rate: int):
        self.output, self.sample_rate = output, sample_rate

    def process(self, element):
        from wavegrad_tf.infer_lib import write_audio

        (key, _, _, samples), audio = element
        if isinstance(audio, Exception):
            yield {"file": key, "error": str(audio)}
            return
        path = target(self.output, key)
        if _remote(path):
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / Path(path).name
                written = write_audio(local, [audio], self.sample_rate, samples)
                with FileSystems.create(path) as f:
                    f.write(local.read_bytes())
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            written = write_audio(Path(path), [audio], self.sample_rate, samples)
        yield {"file": key, "output": path, "seconds": written / self.sample_rate}


def pipeline(root: beam.Pipeline, model: str, inputs: str, output: str, seed: int, batch_size: Optional[int] = None,
             **options):
    """Adds the job to `root`; returns the manifest's PCollection."""
    from wavegrad_tf.infer_lib import is_mel, per_use
    from wavegrad_tf.vocoders import resolve

    source, inputs_listed = resolve(model), listed(inputs)
    present = {is_mel(path) for path, _ in inputs_listed}
    # recordings, mels: each sampled as infer samples it (the reason said only for a kind the job holds)
    chosen = [per_use(source, options, mels) if mels in present else options for mels in (False, True)]
    for each in chosen:
        source.check(**each)
    sample_rate = source.audio_cfg.sample_rate
    read = (root | "List" >> beam.Create(inputs_listed) | "Reshuffle" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(Read(model, output, seed)).with_outputs("failed", main="mels"))
    kinds = read.mels | "Kind" >> beam.Partition(lambda example, n: int(is_mel(example[0])), 2)
    written = [kind | f"Vocode {name}" >> RunInference(VocoderHandler(model, batch_size, **each))
               | f"Write {name}" >> beam.ParDo(Write(output, sample_rate))
               for kind, each, name in zip(kinds, chosen, ("recordings", "mels"))]
    manifest = (*written, read.failed) | beam.Flatten()
    _ = (manifest | "Lines" >> beam.Map(lambda line: json.dumps(line, sort_keys=True))
         | "Manifest" >> beam.io.WriteToText(FileSystems.join(output, MANIFEST), num_shards=1, shard_name_template=""))
    return manifest
