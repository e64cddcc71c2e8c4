"""Quality per CPU-minute: training recipes on the same corpus, crops and seed for the same CPU-time budget.

    python benchmarks/convergence.py --output runs/convergence --config demo --budget_minutes 20
    python benchmarks/convergence.py --output runs/convergence-base --config base \
        --override audio.sample_rate=22050 --override audio.fmax=11025 --recipes today,chosen,lmnt

Each recipe trains in its own process until its CPU time (user + system, every thread) reaches each of
--points equal fractions of the budget; at each point the run is scored on the held-out clips with
`wavegrad_tf.evaluate`'s metrics at 6 iterations (manual-6), Griffin-Lim from the same mels as the floor.
The first training step of every process (graph tracing) is not counted. Everything is kept in
--output: a killed benchmark continues where it was (an unfinished segment is redone from its start),
and a finished one is extended by a larger --budget_minutes with the same minutes per point.
Writes convergence.md (table) and convergence.png (quality against CPU-minutes). --jobs 2 trains two
recipes at once, each process pinned to its own half of the cores (CPU time is still what is compared; a
long comparison then takes half the wall time). --jemalloc runs every process on jemalloc with freed pages
kept: with glibc's malloc, PyTorch maps and unmaps Base's activations at every step, and the page faults
were 60 % of lmnt's CPU time (ours, on TensorFlow's allocator, 3 %).

Recipes are config overrides on `today`, the settings this project trained with before this benchmark:
ln-mel input as is, Keras' Glorot initialisation, no weight averaging, N(0, I) noise, float32, a
constant learning rate. `lmnt` trains lmnt-com/wavegrad's own model with its own training step and
sampler (pip install wavegrad==0.1.5 torch==2.13.0; its network needs hop 300 and 128 mels) on the same
crops, its mels scaled its way (20 log10, then [0, 1]); the project contains none of its code.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import multiprocessing
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wavegrad_tf.config import Consistency  # noqa: E402  (after the path)
from wavegrad_tf.runs import Run  # noqa: E402

TODAY = ["model.mel_mean=0", "model.mel_std=1", "model.init=glorot", "train.ema_decay=0",
         "diffusion.prior=standard", "train.precision=float32", "train.warmup_steps=0", "train.lr_half_life=0"]
SCALED = ["model.mel_mean=-5", "model.mel_std=2.5", "model.init=fan_in"]
LEARNING_RATE = ["train.warmup_steps=200", "train.lr_half_life=1500"]
RECIPES = {
    "today": [],
    "scaled": SCALED,
    "ema": ["train.ema_decay=0.999"],
    "priorgrad": ["diffusion.prior=priorgrad"],
    "bfloat16": ["train.precision=mixed_bfloat16"],
    "warmup+decay": LEARNING_RATE,
    "chosen": SCALED + ["train.ema_decay=0.999", "diffusion.prior=priorgrad", "train.precision=auto"]
    + LEARNING_RATE,
}
# The chosen recipe with SpecGrad's noise (PriorGrad's level, shaped like each frame's spectral envelope).
RECIPES["chosen-specgrad"] = RECIPES["chosen"] + ["diffusion.prior=specgrad"]
# The chosen recipe on a network twice as wide (about 4x the compute per step): a size, not a recipe.
RECIPES["chosen-wide"] = RECIPES["chosen"] + [
    "model.mel_channels=256", "model.upsample_channels=[192,192,128,96,64]",
    "model.downsample_channels=[32,64,96,128,192]"]
METRICS = ("log_mel_l1", "mr_stft", "pesq_wb", "stoi", "dnsmos_ovrl")
SCHEDULE = "manual-6"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_json(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)  # a kill never leaves half a state file


# -- our recipes ------------------------------------------------------------------------------
def train_segment(run: str, config: str, overrides: list, data_dir, until_cpu: float, state: dict) -> dict:
    """Trains the run from its state until the counted CPU time reaches `until_cpu`; returns the new state."""

    from wavegrad_tf import data, train_lib
    from wavegrad_tf.audio import DEMO_CORPUS
    from wavegrad_tf.config import load_config
    from wavegrad_tf.trainer import Trainer

    run = Path(run)
    checkpoints = run / "checkpoints"
    if checkpoints.exists():  # a segment killed after its checkpoint but before the state: redo it
        for path in checkpoints.glob("ckpt-*"):
            if int(path.name.split("-")[1].split(".")[0]) > state["steps"]:
                path.unlink()
        if state["steps"]:
            (checkpoints / "checkpoint").write_text(f'model_checkpoint_path: "ckpt-{state["steps"]}"\n')
    cfg = load_config(config, overrides)
    corpus = data.prepare_corpus(data_dir or DEMO_CORPUS, cfg, run.parent / f"cache-{cfg.audio.sample_rate}")
    clips, held_out = data.split(corpus.clips, cfg.train.validation_fraction, cfg.train.seed)
    cfg = train_lib.measure_prior(cfg, clips)
    trainer = Trainer(cfg, run)
    Run(run).save_split([c.source for c in clips], [c.source for c in held_out], corpus.skipped)
    batches = iter(data.dataset(clips, cfg, cfg.train.batch_size, seed=cfg.train.seed + trainer.global_step))
    float(trainer.train_step(next(batches))["loss"])  # traces the step: not counted
    start, spent = cpu_seconds(), state["cpu_seconds"]
    while spent + cpu_seconds() - start < until_cpu:
        trainer.train_step(next(batches))
    trainer.save()
    return {"cpu_seconds": spent + cpu_seconds() - start, "steps": trainer.global_step}


def evaluate_run(run: str, output: str, files: list, consistency: str = "none") -> dict:
    from wavegrad_tf import evaluate_lib
    from wavegrad_tf.runtime import Metadata
    from wavegrad_tf.vocoders.checkpoint import KerasVocoder

    vocoder = KerasVocoder.from_run(run, Metadata.plan(Run.open(run).config, SCHEDULE,
                                                       consistency={"kind": consistency}))
    results = evaluate_lib.evaluate_vocoder(vocoder, files, output, run, metric_names=list(METRICS), plot_files=1)
    return {s: results["mean"][s] for s in ("wavegrad", "griffin_lim")}


# -- lmnt-com/wavegrad ----------------------------------------------------------------------------
def _import_lmnt():
    """lmnt's learner and sampler modules. Their top-level torchaudio import serves only their own
    preprocessing, which this benchmark replaces with our crops; a torchaudio that does not load beside
    torch 2.13 is stood in for by an empty module."""
    import importlib.util
    import types

    if importlib.util.find_spec("wavegrad") is None or importlib.util.find_spec("torch") is None:
        raise SystemExit("the lmnt recipe needs lmnt-com/wavegrad: pip install wavegrad==0.1.5 torch==2.13.0")
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    import wavegrad.inference
    import wavegrad.learner
    import wavegrad.model
    import wavegrad.params

    return wavegrad


def lmnt_mel(log_mel, audio_cfg):
    """Our ln-mel [.., frames, 128] as lmnt's input [.., 128, frames]: its magnitude mel of a
    window-normalised STFT, 20 log10 - 20 dB, mapped from [-100, 0] dB to [0, 1]."""
    import numpy as np

    window_norm = np.sqrt(np.sum(np.hanning(audio_cfg.win_length + 1)[:-1] ** 2))
    linear = np.exp(np.asarray(log_mel, np.float64) * audio_cfg.mel_scale + audio_cfg.mel_offset) / window_norm
    db = 20 * np.log10(np.maximum(linear, 1e-5)) - 20
    return np.swapaxes(np.clip((db + 100) / 100, 0, 1), -1, -2).astype(np.float32)


def lmnt_train_segment(run: str, config: str, overrides: list, data_dir, until_cpu: float, state: dict) -> dict:
    import torch

    from wavegrad_tf import data
    from wavegrad_tf.audio import DEMO_CORPUS
    from wavegrad_tf.config import load_config

    lmnt = _import_lmnt()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(state["steps"])
    cfg = load_config(config, overrides)
    if cfg.audio.hop_length != 300 or cfg.audio.n_mels != 128:
        raise SystemExit(f"the lmnt recipe needs hop 300 and 128 mels; {config} has {cfg.audio.hop_length} "
                         f"and {cfg.audio.n_mels}")
    params = lmnt.params.AttrDict(lmnt.params.params)
    # lmnt's own batch and crops (32 x 24 frames), learning rate, clipping and schedule.
    cfg = load_config(config, overrides + [f"train.batch_size={params.batch_size}",
                                           f"train.segment_length={params.crop_mel_frames * 300}"])
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    model = lmnt.model.WaveGrad(params)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    learner = lmnt.learner.WaveGradLearner(str(run), model, None, optimizer, params)
    if state["steps"]:
        learner.load_state_dict(torch.load(run / f"weights-{state['steps']}.pt", weights_only=False))
    corpus = data.prepare_corpus(data_dir or DEMO_CORPUS, cfg, run.parent / f"cache-{cfg.audio.sample_rate}")
    clips, held_out = data.split(corpus.clips, cfg.train.validation_fraction, cfg.train.seed)
    Run(run).save_split([c.source for c in clips], [c.source for c in held_out], corpus.skipped)
    batches = iter(data.dataset(clips, cfg, cfg.train.batch_size, seed=cfg.train.seed + learner.step))

    def step():
        batch = next(batches)
        features = {"audio": torch.from_numpy(batch["audio"].numpy()),
                    "spectrogram": torch.from_numpy(lmnt_mel(batch["mel"].numpy(), cfg.audio))}
        learner.train_step(features)
        learner.step += 1

    step()  # not counted, like our first (tracing) step
    start, spent = cpu_seconds(), state["cpu_seconds"]
    while spent + cpu_seconds() - start < until_cpu:
        step()
    torch.save(learner.state_dict(), run / f"weights-{learner.step}.pt")
    for old in run.glob("weights-*.pt"):
        if old.name != f"weights-{learner.step}.pt" and old.name != f"weights-{state['steps']}.pt":
            old.unlink()
    return {"cpu_seconds": spent + cpu_seconds() - start, "steps": learner.step}


class LmntVocoder:
    """lmnt's model and its own sampler (`wavegrad.inference.predict`) behind the evaluator's interface."""

    def __init__(self, weights: Path, audio_cfg, betas):
        import torch

        from wavegrad_tf.runtime import Metadata

        self.lmnt, self.torch = _import_lmnt(), torch
        self.metadata = Metadata(audio=audio_cfg, betas=tuple(float(b) for b in betas))
        self.name = f"lmnt-com/wavegrad ({len(betas)} steps)"
        model = self.lmnt.model.WaveGrad(self.lmnt.params.AttrDict(self.lmnt.params.params))
        model.load_state_dict(torch.load(weights, weights_only=False)["model"])
        model.eval()
        self.key = str(weights)
        self.lmnt.inference.models[self.key] = model  # its predict() would otherwise load weights.pt itself

    def vocode(self, mel, seed=None):
        self.torch.manual_seed(seed or 0)
        spectrogram = self.torch.from_numpy(lmnt_mel(mel, self.metadata.audio))
        audio, _ = self.lmnt.inference.predict(spectrogram, self.key, {"noise_schedule": list(self.metadata.betas)},
                                               device=self.torch.device("cpu"))
        return audio.numpy()[0]


def evaluate_lmnt(run: str, output: str, files: list, config: str, overrides: list, steps: int) -> dict:
    from wavegrad_tf import evaluate_lib, schedules
    from wavegrad_tf.config import load_config

    cfg = load_config(config, overrides)
    vocoder = LmntVocoder(Path(run) / f"weights-{steps}.pt", cfg.audio, schedules.get_schedule(SCHEDULE))
    results = evaluate_lib.evaluate_vocoder(vocoder, files, output, run, metric_names=list(METRICS), plot_files=1)
    return {s: results["mean"][s] for s in ("wavegrad", "griffin_lim")}


# -- the benchmark ----------------------------------------------------------------------------
def in_process(fn, *args, cores=None):
    """Runs fn(*args) in a fresh process (its own CPU clock and TensorFlow state), on `cores` if given;
    returns its result. TensorFlow and tf.data size their thread pools from the affinity mask."""
    ctx = multiprocessing.get_context("spawn")
    pin = (os.sched_setaffinity, (0, cores)) if cores else (None, ())
    with ctx.Pool(1, initializer=pin[0], initargs=pin[1]) as pool:
        return pool.apply(fn, args)


def spread(files: list, count: int) -> list:
    files = sorted(files)
    return [files[int(i)] for i in np.linspace(0, len(files) - 1, min(count, len(files)))]


def evaluation_sets(output: Path, args) -> dict:
    """{name: files}: `held_out`, --eval_files of the clips every recipe holds out (the same corpus and seed give
    the same split), spread over them; and `unseen`, as many from --unseen_dir (a voice never trained on)."""
    from wavegrad_tf.audio import list_audio_files

    sets = {"held_out": spread(Run(next(output.glob("*/run/data_split.json")).parent).held_out_files(), args.eval_files)}
    if args.unseen_dir:
        sets["unseen"] = spread([str(p) for p in list_audio_files(args.unseen_dir)], args.eval_files)
    return sets


def run_point(name: str, target: float, args, cores) -> None:
    """Trains recipe `name` up to `target` CPU-seconds and scores it there, unless its state has that point."""
    output = Path(args.output)
    overrides = TODAY + RECIPES.get(name, []) + list(args.override)
    state_path = output / name / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"cpu_seconds": 0.0, "steps": 0, "points": []}
    if any(p["target"] == target for p in state["points"]):
        return
    (output / name).mkdir(exist_ok=True)
    lmnt = name == "lmnt"
    run = str(output / name / "run")
    trained = in_process(lmnt_train_segment if lmnt else train_segment, run, args.config, overrides, args.data_dir,
                         target, state, cores=cores)
    scores = {}  # {eval set: {consistency option: {"wavegrad": means, "griffin_lim": means}}}
    for set_name, files in evaluation_sets(output, args).items():
        for option in (["none"] if lmnt else args.consistency):
            where = str(output / name / f"eval-{int(target)}-{set_name}-{option}")
            scores.setdefault(set_name, {})[option] = (
                in_process(evaluate_lmnt, run, where, files, args.config, overrides, trained["steps"], cores=cores)
                if lmnt else in_process(evaluate_run, run, where, files, option, cores=cores))
            w = scores[set_name][option]["wavegrad"]
            print(f"{name}: {trained['cpu_seconds'] / 60:.1f}/{args.budget_minutes:g} CPU-min, step {trained['steps']}, "
                  f"{set_name}, consistency {option}  " + "  ".join(f"{m} {w[m]:.3f}" for m in METRICS
                                                                    if w.get(m) is not None), flush=True)
    state.update(trained)
    state["points"].append({"target": target, **trained, "scores": scores})
    write_json(state_path, state)


def run_benchmark(args) -> dict:
    import concurrent.futures
    import queue

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    settings = {"config": args.config, "override": args.override, "data_dir": args.data_dir,
                "point_minutes": args.budget_minutes / args.points, "eval_files": args.eval_files,
                "jobs": args.jobs, "jemalloc": args.jemalloc,  # both change CPU time per step
                "unseen_dir": args.unseen_dir, "consistency": args.consistency}
    settings_path = output / "settings.json"
    # The budget is not a setting: a larger one with the same spacing of points extends a finished benchmark.
    if settings_path.exists() and json.loads(settings_path.read_text()) != settings:
        raise SystemExit(f"{output} holds a benchmark with other settings ({settings_path}); use a new --output")
    write_json(settings_path, settings)
    if args.jemalloc:  # spawned processes inherit the environment; pages stay mapped for the next step
        os.environ.update(LD_PRELOAD=args.jemalloc, MALLOC_CONF="oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1")
    budget = args.budget_minutes * 60
    targets = [budget * (k + 1) / args.points for k in range(args.points)]
    cores = sorted(os.sched_getaffinity(0))
    share = len(cores) // args.jobs
    slots = queue.Queue()  # each job runs on its own cores; a single job keeps the whole affinity mask
    for j in range(args.jobs):
        slots.put(set(cores[j * share:(j + 1) * share]) if args.jobs > 1 else None)

    def job(name, target):
        cores_of_job = slots.get()
        try:
            run_point(name, target, args, cores_of_job)
        finally:
            slots.put(cores_of_job)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for target in targets:  # round-robin: every recipe reaches a point before any goes further
            for future in [pool.submit(job, name, target) for name in args.recipes]:
                future.result()
    results = {name: json.loads((output / name / "state.json").read_text()) for name in args.recipes}
    write_json(output / "results.json", results)
    (output / "convergence.md").write_text(table(results, args))
    plot(results, output / "convergence.png")
    return results


def table(results: dict, args) -> str:
    """One table per evaluation set: a row per recipe, consistency option and point; Griffin-Lim last."""
    from wavegrad_tf.metrics import METRICS as ALL

    lines = [f"`python benchmarks/convergence.py {' '.join(sys.argv[1:])}`"]
    first = next(iter(results.values()))["points"][0]["scores"]
    for set_name in first:
        lines += ["", f"**{set_name}**", "", "| recipe | consistency | CPU-min | steps | "
                  + " | ".join(f"{ALL[m].label} ({ALL[m].better})" for m in METRICS) + " |",
                  "|---|---|---|---|" + "---|" * len(METRICS)]
        for name, state in results.items():
            for option in next(iter(state["points"]))["scores"][set_name]:
                for p in state["points"]:
                    scores = p["scores"][set_name][option]["wavegrad"]
                    lines.append(f"| {name} | {option} | {p['cpu_seconds'] / 60:.1f} | {p['steps']} | "
                                 + " | ".join(_cell(scores.get(m)) for m in METRICS) + " |")
        floor = next(iter(first[set_name].values()))["griffin_lim"]
        lines.append("| Griffin-Lim (32 it.) | - | - | - | " + " | ".join(_cell(floor.get(m)) for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def plot(results: dict, path: Path) -> None:
    """A row of metrics per evaluation set; a line per recipe and consistency option."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wavegrad_tf.metrics import METRICS as ALL

    sets = list(next(iter(results.values()))["points"][0]["scores"])
    fig, axes = plt.subplots(len(sets), len(METRICS), figsize=(4.2 * len(METRICS), 3.4 * len(sets)), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for row, set_name in zip(axes, sets):
        floor = next(iter(results.values()))["points"][0]["scores"][set_name]
        floor = next(iter(floor.values()))["griffin_lim"]
        for ax, metric in zip(row, METRICS):
            for i, (name, state) in enumerate(results.items()):
                for j, option in enumerate(state["points"][0]["scores"][set_name]):
                    points = [(p["cpu_seconds"] / 60, p["scores"][set_name][option]["wavegrad"].get(metric))
                              for p in state["points"]]
                    points = [(x, y) for x, y in points if y is not None]
                    if points:
                        ax.plot(*zip(*points), "o" + styles[j % len(styles)], color=f"C{i}",
                                label=f"{name}, {option}", linewidth=1.5)
            if floor.get(metric) is not None:
                ax.axhline(floor[metric], color="gray", linestyle="--", label="Griffin-Lim")
            ax.set_title(f"{set_name}: {ALL[metric].label} ({ALL[metric].better} is better)", fontsize=9)
            ax.set_xlabel("training CPU-minutes", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.12 / len(sets), 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", default="demo")
    parser.add_argument("--override", action="append", default=[], help="Config override for every recipe.")
    parser.add_argument("--data_dir", default=None, help="Corpus; default: the bundled demo corpus.")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"Any of {', '.join(RECIPES)}, lmnt.")
    parser.add_argument("--budget_minutes", type=float, default=20.0, help="Training CPU-minutes per recipe.")
    parser.add_argument("--points", type=int, default=4, help="Evaluations along the budget.")
    parser.add_argument("--eval_files", type=int, default=8, help="Held-out clips scored at each point.")
    parser.add_argument("--unseen_dir", default=None, help="Recordings of a voice the corpus does not hold, scored "
                        "too (as many clips, spread over it).")
    parser.add_argument("--consistency", default="none", help="Sampler consistency options each point is scored "
                        "with: any of Consistency.KINDS (none, mel, gla, gla_once), comma-separated.")
    parser.add_argument("--jobs", type=int, default=1, help="Recipes trained at once, each on its own cores.")
    parser.add_argument("--jemalloc", default=None, help="Path of libjemalloc.so.2 (Debian: libjemalloc2) to run "
                        "every recipe on, e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2.")
    args = parser.parse_args()
    if args.jemalloc and not Path(args.jemalloc).is_file():
        raise SystemExit(f"--jemalloc: no file {args.jemalloc}; apt-get install libjemalloc2")
    if not 1 <= args.jobs <= len(os.sched_getaffinity(0)):
        raise SystemExit(f"--jobs: {args.jobs}; expected 1 to the {len(os.sched_getaffinity(0))} usable cores")
    args.recipes, args.consistency = args.recipes.split(","), args.consistency.split(",")
    if set(args.consistency) - set(Consistency.KINDS):
        raise SystemExit(f"--consistency: {args.consistency}; expected any of {', '.join(Consistency.KINDS)}")
    for name in args.recipes:
        if name not in RECIPES and name != "lmnt":
            raise SystemExit(f"--recipes: unknown {name!r}; expected any of {list(RECIPES)} or lmnt")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_benchmark(args)


if __name__ == "__main__":
    main()
