"""Training a run (`python -m wavegrad_tf.train` is the command line): every setting checked before TensorFlow
loads and before anything is written, then the corpus prepared and the `Trainer` run."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from absl import logging

from wavegrad_tf.errors import UserError


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


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What a training start will do, worked out before anything is written (`plan`), then carried out
    (`execute`)."""

    cfg: object  # the Config to train with: precision decided, the resume rules applied, once
    run: object  # the run it trains (a `Run`; a non-chief worker writes into its own inside it)
    steps: int
    data_dir: str
    cache_dir: Path
    strategy: str
    tpu: str
    initial_run: object = None  # the model a new fine-tuning starts from
    announcements: tuple = ()  # what is printed before the corpus is read: the precision and every change


def plan(config: str | None, model_dir: str, steps: int, data_dir: str | None = None, overrides=(),
         strategy_name: str = "default", tpu: str = "", cache_dir: str | None = None, init_from: str | None = None,
         cpu_replicas: int = 0) -> TrainingPlan:
    """Every setting checked, every decision made, nothing written: a UserError names what is wrong."""
    from wavegrad_tf import hardware
    from wavegrad_tf.audio import DEMO_CORPUS, list_audio_files
    from wavegrad_tf.config import changes, load_config
    from wavegrad_tf.runs import Run

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"--steps {steps}: expected a whole number >= 1")
    check_cluster(strategy_name, tpu, cpu_replicas)
    initial_run = None
    if init_from is not None:
        from wavegrad_tf.vocoders import resolve

        initial_run = resolve(init_from, "--init_from", kinds=("run",)).run
        if not initial_run.has_weights:
            raise UserError(f"--init_from {init_from}: has a config but no weights ({initial_run.describe_weights()})")
    run = Run(model_dir, flag="--model_dir")
    # Without --config: the config of what is continued (the run resumed, or the model fine-tuned), else demo's.
    source = initial_run or (run if run.exists else None)
    cfg = load_config(config or (source.config_path if source else "demo"), list(overrides))
    overridden = {text.split("=", 1)[0].strip() for text in overrides}
    train = cfg.train
    if source is not None and not config and "train.precision" not in overridden:
        # The precision the model trained in was its machine's choice: this one decides its own.
        train = dataclasses.replace(train, precision="auto")
    if initial_run is not None:
        # The average starts from the model's averaged weights: no random initialisation for a ramp to forget.
        train = dataclasses.replace(train, ema_ramp=False)
    if cfg.train.batch_size % (cpu_replicas or 1):
        raise UserError(f"--cpu_replicas {cpu_replicas}: train.batch_size {cfg.train.batch_size} does not split into "
                        f"{cpu_replicas} equal parts; expected a divisor of it")
    cfg = dataclasses.replace(cfg, train=train)
    continued = [(initial_run, f"--init_from {init_from}", "fine-tuning with")] if initial_run is not None else []
    if run.exists:  # a resume
        continued.append((run, "the run", "resuming with"))
    for previous, what, _ in continued:  # refusals come before TensorFlow loads (the precision lists the GPUs)
        cfg = previous.continued_config(cfg, what)
    data_dir = data_dir or DEMO_CORPUS
    list_audio_files(data_dir)
    choice = hardware.training_precision(train.precision, hardware.this_machine(hardware.tensorflow_gpus(),
                                                                                 strategy_name == "tpu"))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=choice.precision))
    announcements = [choice.report()] + [f"{announce} {line}" for previous, _, announce in continued
                                          for line in changes(previous.config, cfg)]
    if choice.warning:
        logging.warning(choice.warning)
    return TrainingPlan(cfg, run, steps, str(data_dir), Path(cache_dir) if cache_dir else run.cache, strategy_name,
                        tpu, initial_run, tuple(announcements))


def run(*args, **kwargs) -> dict:
    """Trains to `steps` (`plan`'s arguments); returns the last logged metrics. The library entry point behind the
    CLI."""
    return execute(plan(*args, **kwargs))


def execute(plan: TrainingPlan) -> dict:
    from wavegrad_tf import data, hardware
    from wavegrad_tf.runs import checkpoint_variables
    from wavegrad_tf.trainer import Trainer, make_strategy, writer

    hardware.configure_tensorflow()
    strategy = make_strategy(plan.strategy, plan.tpu)
    cfg = plan.cfg
    with writer(plan.run, strategy).lock():  # one training process per folder
        for line in plan.announcements:
            print(line, flush=True)
        corpus = data.prepare_corpus(plan.data_dir, cfg, plan.cache_dir)
        print(corpus.summary(), flush=True)
        for path, reason in corpus.skipped.items():
            print(f"  skipped {path}: {reason}", flush=True)
        train, val = data.split(corpus.clips, cfg.train.validation_fraction, cfg.train.seed)
        if not train:
            raise UserError(f"--data_dir {plan.data_dir}: no usable training audio ({corpus.summary()}); the run in "
                            f"{plan.run.folder} was not started")
        cfg = measure_prior(cfg, train)
        trainer = Trainer(cfg, plan.run, strategy)
        if plan.initial_run is not None and trainer.global_step == 0:
            print(f"starting from the weights of {plan.initial_run.restore_weights(trainer.network)}", flush=True)
            for path, var in trainer.ema.items():
                var.assign(checkpoint_variables(trainer.network)[path])
        if trainer.global_step > plan.steps:
            raise UserError(f"--steps {plan.steps}: the run in {plan.run.folder} is already at step "
                            f"{trainer.global_step}; expected a larger --steps to train further")
        # the run starts: its state may change
        trainer.run.save_split([c.source for c in train], [c.source for c in val], corpus.skipped)
        if trainer.global_step == plan.steps:
            print(f"{plan.run.folder} is already at step {plan.steps}: nothing to train", flush=True)
        print(f"{cfg.name}: {trainer.network.count_params():,} parameters, {strategy.num_replicas_in_sync} replica(s), "
              f"{len(train)} training / {len(val)} validation pieces", flush=True)
        return trainer.fit(train, val, plan.steps)
