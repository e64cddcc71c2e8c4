"""Train WaveGrad: python -m wavegrad_tf.train --config demo --model_dir runs/demo [--data_dir DIR] [--steps N].

With no --data_dir, trains on the bundled demo corpus. Config fields can be overridden, e.g.
--override train.batch_size=8 --override diffusion.continuous=false. --init_from starts from the weights of
another run or a pretrained model (fine-tuning); its config is the default then, and only train.* may differ.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from absl import flags

from wavegrad_tf import cli
from wavegrad_tf.errors import UserError

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a script (the modules import each other)."""
    flags.DEFINE_string("config", None, "Preset name (base, large, ljspeech, demo) or a YAML file; default: demo, or "
                        "the --init_from model's config.")
    flags.DEFINE_string("init_from", None, "Start from the averaged weights of this run folder or pretrained model "
                        "(the weight average starts there too, without a decay ramp: train.ema_ramp=false).")
    flags.DEFINE_string("data_dir", None, "Folder of audio (wav/flac/ogg) or with an LJSpeech metadata.csv; "
                        "default: the bundled demo corpus.")
    flags.DEFINE_string("model_dir", None, "Where checkpoints, config.yaml and TensorBoard logs go.", required=True)
    flags.DEFINE_integer("steps", 1000, "Train until this global step (a resumed run continues to it).")
    flags.DEFINE_multi_string("override", [], "Config override section.key=value (repeatable).")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                      "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG.")
    flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
    flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into this many logical devices (try mirrored on a laptop).")
    flags.DEFINE_string("cache_dir", None, "Decoded-audio cache; default: <model_dir>/audio_cache.")


def measure_prior(cfg, clips):
    """`cfg` with what its prior measures on the training clips (PriorGrad's and SpecGrad's energy normaliser)."""
    from wavegrad_tf import data, priors

    measured = priors.prior_for(cfg).measured(lambda: data.energy_max(clips, cfg))
    if measured.diffusion.prior_energy_max != cfg.diffusion.prior_energy_max:
        print(f"{cfg.diffusion.prior}: largest training frame energy {measured.diffusion.prior_energy_max:.4g}",
              flush=True)
    return measured


def check_cluster(strategy_name: str, tpu: str = "", cpu_replicas: int = 0) -> None:
    """The distribution flags and TF_CONFIG, checked before anything loads: TensorFlow would fail on them later,
    after the corpus is decoded, with a traceback."""
    if strategy_name == "tpu" and not tpu:
        raise UserError("--strategy tpu: expected --tpu NAME (the TPU's name or grpc:// address)")
    if cpu_replicas < 0:
        raise UserError(f"--cpu_replicas {cpu_replicas}: expected >= 0")
    if strategy_name != "multi_worker":
        return
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError("--strategy multi_worker: TF_CONFIG is not set; expected the cluster as JSON "
                        '({"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}})')
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        members = cluster[task["type"]]
        index = task["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"TF_CONFIG: expected JSON with cluster and task (type, index); {type(e).__name__}: "
                        f"{str(e)[:80]}") from None
    if not isinstance(index, int) or not 0 <= index < len(members):
        raise UserError(f"TF_CONFIG: task index {index!r} for the {len(members)} {task['type']} address(es) listed")


def run(config: str | None, model_dir: str, steps: int, data_dir: str | None = None, overrides=(),
        strategy_name: str = "default", tpu: str = "", cache_dir: str | None = None,
        init_from: str | None = None, cpu_replicas: int = 0) -> dict:
    """Trains to `steps`; returns the last logged metrics. The library entry point behind the CLI."""
    from wavegrad_tf import pretrained
    from wavegrad_tf.audio import DEMO_CORPUS, list_audio_files
    from wavegrad_tf.config import load_config, resume_config

    # Everything a user can get wrong is checked before TensorFlow loads and before anything is written.
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"--steps {steps}: expected a whole number >= 1")
    check_cluster(strategy_name, tpu, cpu_replicas)
    initial = None
    if init_from is not None:
        folder = pretrained.resolve(init_from)
        if not (folder / "config.yaml").exists():
            raise UserError(f"--init_from {init_from}: not a training run or a pretrained model "
                            f"(pretrained: {', '.join(pretrained.names())})")
        if not (folder / "weights.npz").exists() and not list((folder / "checkpoints").glob("ckpt-*.index")):
            raise UserError(f"--init_from {init_from}: has a config.yaml but no weights (no checkpoints/ckpt-* and no "
                            "weights.npz)")
        initial = load_config(folder / "config.yaml")
    cfg = load_config(config or (folder / "config.yaml" if initial else "demo"), list(overrides))
    if initial is not None:
        # The average starts from the model's averaged weights: no random initialisation for a ramp to forget.
        # The precision the model trained in was its machine's choice: this one decides its own.
        precision = cfg.train.precision if config or _overrides("train.precision", overrides) else "auto"
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, ema_ramp=False, precision=precision))
    replicas = cpu_replicas or 1
    if cfg.train.batch_size % replicas:
        raise UserError(f"--cpu_replicas {cpu_replicas}: train.batch_size {cfg.train.batch_size} does not split into "
                        f"{replicas} equal parts; expected a divisor of it")
    stored = Path(model_dir) / "config.yaml"
    # (previous config, what it is, how its accepted changes are announced): checked now, announced below
    continued = [(initial, f"--init_from {init_from}", "fine-tuning with")] if initial is not None else []
    if stored.exists():  # a resume
        continued.append((load_config(stored), "the run", "resuming with"))
    for previous, source, _ in continued:
        resume_config(previous, cfg, source)
    data_dir = data_dir or DEMO_CORPUS
    list_audio_files(data_dir)

    from wavegrad_tf import data, hardware, runs
    from wavegrad_tf.model import checkpoint_variables
    from wavegrad_tf.trainer import Trainer, choose_precision, make_strategy, writer_folder

    hardware.configure_tensorflow()
    strategy = make_strategy(strategy_name, tpu)
    with runs.exclusive(writer_folder(model_dir, strategy)):  # one training process per folder it writes
        cfg = choose_precision(cfg, tpu=strategy_name == "tpu")
        for previous, source, announce in continued:
            cfg, changes = resume_config(previous, cfg, source)
            for change in changes:
                print(f"{announce} {change}", flush=True)
        corpus = data.prepare_corpus(data_dir, cfg, cache_dir or Path(model_dir) / "audio_cache")
        print(corpus.summary(), flush=True)
        for path, reason in corpus.skipped.items():
            print(f"  skipped {path}: {reason}", flush=True)
        train, val = data.split(corpus.clips, cfg.train.validation_fraction, cfg.train.seed)
        if not train:
            raise UserError(f"--data_dir {data_dir}: no usable training audio ({corpus.summary()}); the run in "
                            f"{model_dir} was not started")
        cfg = measure_prior(cfg, train)
        trainer = Trainer(cfg, model_dir, strategy)
        if initial is not None and trainer.global_step == 0:
            print(f"starting from the weights of {runs.restore_weights(trainer.model, folder, flag='--init_from')}",
                  flush=True)
            for path, var in trainer.ema.items():
                var.assign(checkpoint_variables(trainer.model)[path])
        if trainer.global_step > steps:
            raise UserError(f"--steps {steps}: the run in {model_dir} is already at step {trainer.global_step}; "
                            "expected a larger --steps to train further")
        data.save_split(trainer.model_dir / "data_split.json", corpus, train, val)  # the run starts: its state may change
        if trainer.global_step == steps:
            print(f"{model_dir} is already at step {steps}: nothing to train", flush=True)
        print(f"{cfg.name}: {trainer.model.count_params():,} parameters, {strategy.num_replicas_in_sync} replica(s), "
              f"{len(train)} training / {len(val)} validation pieces", flush=True)
        return trainer.fit(train, val, steps)


def _overrides(field: str, overrides) -> bool:
    return any(text.split("=", 1)[0].strip() == field for text in overrides)


def main(argv):
    del argv
    check_cluster(FLAGS.strategy, FLAGS.tpu, FLAGS.cpu_replicas)
    if FLAGS.cpu_replicas:
        from wavegrad_tf.trainer import split_cpu

        split_cpu(FLAGS.cpu_replicas)
    run(FLAGS.config, FLAGS.model_dir, FLAGS.steps, FLAGS.data_dir, FLAGS.override, FLAGS.strategy,
        FLAGS.tpu, FLAGS.cache_dir, FLAGS.init_from, FLAGS.cpu_replicas)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run(main)
