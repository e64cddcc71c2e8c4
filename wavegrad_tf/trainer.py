"""Distributed training loop: tf.distribute strategies, the step (WaveGrad's noise-prediction loss, and InferGrad's
loss through the unrolled sampler), checkpoints, TensorBoard."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from wavegrad_tf import data, diffusion, hardware, losses, mel, priors, runs, schedules
from wavegrad_tf.config import Config, Consistency
from wavegrad_tf.model import build_model
from wavegrad_tf.runs import checkpoint_variables
from wavegrad_tf.runtime import Metadata, PositionalNoise

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def split_cpu(replicas: int) -> None:
    """Splits the CPU into logical devices so MirroredStrategy can be tried on a laptop. Call before any op."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    if name == "multi_worker":  # cluster from TF_CONFIG
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--strategy: expected one of {STRATEGIES}, got {name!r}")


def choose_precision(cfg: Config, tpu: bool = False) -> Config:
    """`cfg` with train.precision decided for this machine (`hardware.training_precision`), printed with why."""
    choice = hardware.training_precision(cfg.train.precision, hardware.this_machine(hardware.tensorflow_gpus(), tpu))
    print(choice.report(), flush=True)
    if choice.warning:
        logging.warning(choice.warning)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=choice.precision))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                              and "chief" not in resolver.cluster_spec().as_dict())


def writer(run: runs.Run, strategy: tf.distribute.Strategy) -> runs.Run:
    """Where this process writes: the run, or for a non-chief worker its own run inside it (its identical checkpoints
    go aside, as tf.distribute requires)."""
    return run.worker(None if is_chief(strategy) else strategy.cluster_resolver.task_id)


class Trainer:
    """Owns the model, optimizer and checkpoint of one run (a `Run`, or its folder); resumes from its last
    checkpoint."""

    def __init__(self, cfg: Config, run: runs.Run | str | os.PathLike,
                 strategy: Optional[tf.distribute.Strategy] = None):
        self.strategy = strategy or tf.distribute.get_strategy()
        if cfg.train.precision == "auto":  # train.run decides it earlier; a library user may leave it to here
            cfg = choose_precision(cfg, isinstance(self.strategy, tf.distribute.TPUStrategy))
        self.cfg, self.prior = cfg, priors.prior_for(cfg)
        self.chief = is_chief(self.strategy)
        run = run if isinstance(run, runs.Run) else runs.Run(run, flag="--model_dir")
        self.run = writer(run, self.strategy)
        self.model_dir = self.run.folder
        self.model_dir.mkdir(parents=True, exist_ok=True)
        float16 = cfg.train.precision == "mixed_float16"
        with self.strategy.scope():
            self.network = build_model(cfg, dtype=cfg.train.precision)
            # The loss-scale optimizer is also the non-finite guard: a step whose gradients hold a
            # NaN or inf is skipped. Outside float16 the scale stays 1 (only halves after a bad step).
            self.optimizer = keras.optimizers.LossScaleOptimizer(
                keras.optimizers.Adam(LearningRate(cfg.train.learning_rate, cfg.train.warmup_steps,
                                                   cfg.train.lr_half_life)),
                initial_scale=2.0**15 if float16 else 1.0,
                dynamic_growth_steps=2000 if float16 else 2**31 - 1)
            self.optimizer.build(self.network.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            # The weights' moving average, by the same paths as the weights; replicas hold equal weights,
            # so the first replica's update is everyone's.
            self.ema = {path: tf.Variable(v.value, trainable=False, name=f"ema/{path}",
                                          synchronization=tf.VariableSynchronization.ON_WRITE,
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
                        for path, v in checkpoint_variables(self.network).items()} if cfg.train.ema_decay else {}
        self.checkpoint = tf.train.Checkpoint(model=checkpoint_variables(self.network), optimizer=self.optimizer,
                                              step=self.step, **({"ema": self.ema} if self.ema else {}))
        self.manager = self.run.checkpoint_manager(self.checkpoint, cfg.train.keep_checkpoints)
        # InferGrad: the few-step samplers the output loss runs through, the network alone (the loss is to make it
        # good without the projection), in training mode.
        self.samplers = [diffusion.Sampler(self._training_eps, cfg, betas, Consistency())
                         for betas in data.infer_schedules(cfg)] if cfg.train.infer_loss_weight else []
        self._restore()
        self._config_written = False  # written when the run starts (fit) or first saves: a failed start changes nothing
        # No autograph: the step has no tensor-dependent Python control flow, and converting every Keras call it
        # reaches made tracing (the start of each run) a third slower.
        self._distributed_step = tf.function(self._distributed_step_fn, jit_compile=cfg.train.jit_compile or None,
                                             autograph=False)

    def _restore(self) -> None:
        """Resumes from the newest intact checkpoint; a corrupt one is named and skipped with a warning."""
        prefix = self.run.restore_newest(lambda p: self.checkpoint.restore(p).assert_existing_objects_matched())
        if prefix is not None:
            print(f"resumed from {prefix} at step {self.global_step}", flush=True)

    # -- the step -------------------------------------------------------------------------
    def _training_eps(self, y, mel_, level):
        return tf.cast(self.network([y, mel_, level], training=True), tf.float32)

    def _replica_step(self, batch, sampler: int):
        cfg = self.cfg.train
        ctx = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            pred = self.network([batch["noisy_audio"], batch["mel"], batch["conditioning"]], training=True)
            per_example = tf.reduce_mean(losses.noise_loss(batch["noise"], pred, self.prior, batch["mel"]), axis=-1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=cfg.batch_size)
            output_loss = tf.constant(0.0)
            if self.samplers:  # InferGrad: the sampler's output from the prior's noise, against the recording
                k = cfg.infer_items
                white = batch["sampler_noise"][:k]
                audio = self.samplers[sampler](batch["mel"][:k], lambda step, *_: white[:, step - 1])
                output_loss = tf.nn.compute_average_loss(
                    losses.output_loss(audio, batch["audio"][:k], cfg.infer_waveform_weight),
                    global_batch_size=k * ctx.num_replicas_in_sync)
            scaled = self.optimizer.scale_loss(loss + cfg.infer_loss_weight * output_loss)
        grads = tape.gradient(scaled, self.network.trainable_variables)
        # Clip the global gradient: all-reduce here, since Keras would clip each replica's part.
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        scale = tf.cast(self.optimizer.dynamic_scale, tf.float32)
        grads, norm = tf.clip_by_global_norm(grads, cfg.grad_clip_norm * scale)
        # The optimizer sums over replicas again; hand it each replica's equal share.
        replicas = tf.cast(ctx.num_replicas_in_sync, tf.float32)
        self.optimizer.apply_gradients(zip([g / replicas for g in grads], self.network.trainable_variables))
        if self.ema:
            self._update_ema()
        return loss, output_loss, norm / scale

    def _update_ema(self):
        # With ema_ramp the decay ramps up from 0.1 (TensorFlow's ExponentialMovingAverage with num_updates), so
        # the average does not remember the random initialisation for ~1 / (1 - decay) steps. n: updates before this.
        decay = self.cfg.train.ema_decay
        if self.cfg.train.ema_ramp:
            n = tf.cast(self.optimizer.iterations - 1, tf.float32)
            decay = tf.minimum(decay, (1.0 + n) / (10.0 + n))
        for path, var in checkpoint_variables(self.network).items():
            self.ema[path].assign(decay * self.ema[path] + (1.0 - decay) * var.value)

    def averaged_model(self, into=None):
        """A model holding the weights' moving average (the training model itself without EMA); `into`
        reuses a model built earlier by this method."""
        if not self.ema:
            return self.network
        model = into or build_model(self.cfg)
        for path, var in checkpoint_variables(model).items():
            var.assign(self.ema[path].read_value())
        return model

    def _distributed_step_fn(self, batch, sampler: int):
        loss, output_loss, norm = self.strategy.run(self._replica_step, args=(batch, sampler))
        self.step.assign_add(1)
        total = lambda x: self.strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None)  # noqa: E731
        return {"loss": total(loss), "output_loss": total(output_loss),
                "grad_norm": self.strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None)}

    @property
    def global_step(self) -> int:
        return int(self.step.numpy())  # .numpy(): int() rejects a MirroredVariable

    def train_step(self, batch) -> dict:
        """One update from a global batch (a dict of tensors, or a distributed batch): {loss (noise prediction),
        output_loss (InferGrad's, 0 without it), grad_norm}. InferGrad's schedules take turns, a step each (one
        trace each)."""
        return self._distributed_step(batch, self.global_step % max(len(self.samplers), 1))

    # -- the loop -------------------------------------------------------------------------
    def fit(self, train_clips: list, val_clips: list, steps: int) -> dict:
        cfg = self.cfg.train
        if cfg.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(f"train.batch_size ({cfg.batch_size}) must be a multiple of the "
                             f"{self.strategy.num_replicas_in_sync} replicas")
        ds = data.dataset(train_clips, self.cfg, cfg.batch_size, seed=cfg.seed + self.global_step)
        batches = iter(self.strategy.experimental_distribute_dataset(ds))
        self._write_config()
        writer = tf.summary.create_file_writer(str(self.run.logs("train"))) if self.chief else None
        validator = Validator(self, val_clips) if self.chief and val_clips and cfg.validate_every else None
        start_step, t0, last = self.global_step, time.time(), {}
        logged = (start_step, self.global_step - int(self.optimizer.iterations.numpy()))  # (step, skipped) at the last log
        stop = _StopRequest()
        try:
            while self.global_step < steps and not stop.requested:
                metrics = self.train_step(next(batches))
                step = self.global_step
                if step % cfg.log_every == 0 or step == steps:
                    metrics = {k: float(v) for k, v in metrics.items()}
                    rate = (step - start_step) / max(time.time() - t0, 1e-9)
                    skipped = step - int(self.optimizer.iterations.numpy())
                    last = {"step": step, **metrics, "steps_per_sec": rate, "skipped_nonfinite": skipped}
                    eta = (steps - step) / max(rate, 1e-9)
                    output = f"  output_loss {metrics['output_loss']:.4f}" if self.samplers else ""
                    print(f"step {step}/{steps}  loss {metrics['loss']:.4f}{output}  grad_norm {metrics['grad_norm']:.3f}"
                          f"  {rate:.2f} steps/s  ETA {int(eta // 60)}m{int(eta % 60):02d}s"
                          + (f"  skipped {skipped}" if skipped else ""), flush=True)
                    if writer:
                        with writer.as_default(step=step):
                            for k in ("loss", "grad_norm", "steps_per_sec") + (("output_loss",) if self.samplers else ()):
                                tf.summary.scalar(k, last[k])
                            tf.summary.scalar("nonfinite_skipped", skipped)
                    if step > logged[0] and skipped - logged[1] == step - logged[0]:
                        raise runs.RunError(f"{self.model_dir}: every step from {logged[0] + 1} to {step} was skipped "
                                            "(non-finite gradients): stopped, keeping "
                                            f"{self.manager.latest_checkpoint or 'no checkpoint'}")
                    logged = (step, skipped)
                if step % cfg.checkpoint_every == 0:
                    self.save()
                if validator and step % cfg.validate_every == 0:
                    last.update(validator(step))
            if stop.requested:
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.save()
            print(f"interrupted at step {self.global_step}: saved {self.manager.latest_checkpoint}", flush=True)
            raise
        finally:
            stop.restore()
        self.save()
        if validator and self.global_step % cfg.validate_every:
            last.update(validator(self.global_step))
        return last

    def _write_config(self) -> None:
        if not self._config_written:
            self.run.save_config(self.cfg)
            self._config_written = True

    def save(self) -> None:
        """Writes a checkpoint of this step; refuses (RunError) weights that are no longer finite, so the checkpoint
        rotation never replaces a good checkpoint with a broken one."""
        step = self.global_step
        if not step or self.manager.latest_checkpoint == f"{self.manager.directory}/ckpt-{step}":
            return
        self._write_config()
        broken = [v.path for v in self.network.weights if not bool(tf.reduce_all(tf.math.is_finite(v.value)))]
        if broken:
            raise runs.RunError(f"{self.model_dir}: the weights are not finite at step {step} ({broken[0]} and "
                                f"{len(broken) - 1} more): not saved, keeping "
                                f"{self.manager.latest_checkpoint or 'no checkpoint'}")
        self.manager.save(checkpoint_number=step)


class _StopRequest:
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step, save and exit; a
    second Ctrl-C stops at once (KeyboardInterrupt), and that is saved too. A flag, so the step in flight
    finishes before the save, and SIGTERM (what `kill`, `timeout` and job schedulers send) saves as well."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested, self.previous = False, {}
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            # An ignored signal stays ignored: `cmd &` in a script ignores SIGINT, nohup SIGHUP, and so on.
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS
                             if signal.getsignal(s) is not signal.SIG_IGN}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print(f"{signal.Signals(signum).name}: stopping after this step (Ctrl-C again to stop now)",
              file=sys.stderr, flush=True)

    def restore(self):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup` steps, then halved every `half_life` steps (0: constant)."""

    def __init__(self, peak: float, warmup: int = 0, half_life: int = 0):
        self.peak, self.warmup, self.half_life = peak, warmup, half_life

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = self.peak * tf.minimum(1.0, (step + 1.0) / max(self.warmup, 1))
        if self.half_life:
            rate *= tf.pow(0.5, tf.maximum(step - self.warmup, 0.0) / self.half_life)
        return rate

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup, "half_life": self.half_life}


class Validator:
    """Validation loss at fixed noise levels, and a vocoded held-out clip (audio + mel image) in TensorBoard."""

    LEVELS = (0.1, 0.5, 0.9)

    def __init__(self, trainer: Trainer, clips: list):
        self.trainer, self.cfg = trainer, trainer.cfg
        self.writer = tf.summary.create_file_writer(str(trainer.run.logs("validation")))
        window = tf.stack([data.read_window(c.cache, 0, self.cfg) for c in clips[:8]])
        self.audio, self.mel = data.crop_features(window, self.cfg)
        self.noise = trainer.prior.shape(tf.random.stateless_normal(tf.shape(self.audio), [7, 7]),
                                         trainer.prior.condition(self.mel))
        self.network = self.sampler = None
        self.train_levels = schedules.noise_levels(schedules.get_schedule(self.cfg.diffusion.train_schedule))

    def _step_fraction(self, level: float) -> float:
        n = int(np.argmin(np.abs(self.train_levels[1:] - level))) + 1
        return n / (len(self.train_levels) - 1)

    def _vocode(self, model) -> np.ndarray:
        """The first clip's mel vocoded as the config plans (its inference schedule and consistency), seed 0."""
        if self.sampler is None:  # `model` is the same object at every validation: one trace
            plan = Metadata.plan(self.cfg, precision="float32")
            eps = tf.function(lambda y, m, c: model([y, m, c], training=False), reduce_retracing=True, autograph=False)
            self.sampler = diffusion.Sampler(eps, self.cfg, plan.betas, plan.consistency)
        audio = self.sampler(self.mel[:1], PositionalNoise(0), 0).numpy()
        if not np.all(np.isfinite(audio)):
            raise FloatingPointError("non-finite audio")
        return audio

    def __call__(self, step: int) -> dict:
        self.network = model = self.trainer.averaged_model(into=self.network)
        n = int(self.audio.shape[0])
        scores = {}
        for level in self.LEVELS:
            lv = tf.fill([n], level)
            # Discrete models see n / T: validate them at the nearest step of their training schedule.
            conditioning = lv if self.cfg.diffusion.continuous else tf.fill([n], self._step_fraction(level))
            pred = model([data.add_noise(self.audio, self.noise, lv), self.mel, conditioning], training=False)
            scores[f"val_loss_{level}"] = float(tf.reduce_mean(losses.noise_loss(self.noise, pred, self.trainer.prior,
                                                                                     self.mel)))
        try:
            fake = tf.constant(self._vocode(model))
        except FloatingPointError as e:  # a young model's samples can diverge: report it, keep training
            logging.warning("validation at step %d: %s", step, e)
            scores["val_mel_l1"] = float("nan")
            return scores
        scores["val_mel_l1"] = float(mel.log_mel_l1(fake, self.audio[:1], self.cfg.audio))
        real_mel = mel.log_mel_spectrogram(self.audio[:1], self.cfg.audio)
        fake_mel = mel.log_mel_spectrogram(tf.clip_by_value(fake, -1, 1), self.cfg.audio)
        with self.writer.as_default(step=step):
            for k, v in scores.items():
                tf.summary.scalar(k, v)
            sr = self.cfg.audio.sample_rate
            tf.summary.audio("vocoded", tf.clip_by_value(fake, -1, 1)[..., None], sr)
            tf.summary.audio("original", self.audio[:1, :, None], sr)
            tf.summary.image("mel_original_vs_vocoded", _mel_image(tf.concat([real_mel, fake_mel], 1)))
        logging.info("validation at step %d: %s", step, json.dumps(scores))
        return scores


def _mel_image(log_mel):
    """[1, frames, n_mels] log-mel -> [1, n_mels, frames, 1] image, low frequencies at the bottom."""
    x = tf.transpose(log_mel, [0, 2, 1])[:, ::-1, :, None]
    lo, hi = tf.reduce_min(x), tf.reduce_max(x)
    return (x - lo) / tf.maximum(hi - lo, 1e-6)
