"""Search an N-step noise schedule on the paper's grid, scored by the log-mel L1 of vocoded validation clips.

(`python -m wavegrad_tf.schedule_search` is the command line.)

Every beta is one of {1..9} x 10^k, k in -6..-1 (54 values), and the schedule is non-decreasing. The
search is deterministic, in two stages:
1. Seeds, all scored: the whole grid when it has at most --exhaustive_limit schedules (1 and 2 steps);
   otherwise the geometric schedules between every pair of 1-2-5 grid values, snapped to the grid,
   plus any preset with N steps.
2. Coordinate descent from the best seed: each beta in turn tried at every grid value that keeps the
   schedule monotone, the best kept, until a sweep changes nothing.
Each score is appended to <output>/scores.jsonl as it arrives; a restarted search re-scores nothing
and follows the same path to the same best. <output>/schedule.yaml always holds the best so far, and
--schedule of infer, evaluate and the exporters accepts it. --budget_minutes bounds each invocation.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from itertools import combinations_with_replacement
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import yaml

from wavegrad_tf import hardware
from wavegrad_tf.config import Consistency
from wavegrad_tf.errors import UserError
from wavegrad_tf.runs import Run
from wavegrad_tf.runtime.noise import PositionalNoise

GRID = tuple(float(f"{m}e{k}") for k in range(-6, 0) for m in range(1, 10))
Candidate = tuple[int, ...]  # indices into GRID, non-decreasing


def betas_of(candidate: Candidate) -> list[float]:
    return [GRID[i] for i in candidate]


def snap(betas: Iterable[float]) -> Candidate:
    """Nearest grid values in log scale (monotone, so a monotone schedule stays monotone)."""
    logs = np.log10(GRID)
    return tuple(int(np.argmin(np.abs(logs - np.log10(b)))) for b in betas)


def grid_size(iterations: int) -> int:
    return math.comb(len(GRID) + iterations - 1, iterations)


def seeds(iterations: int, exhaustive_limit: int) -> list[Candidate]:
    """Stage 1's candidates, in a fixed order."""
    if grid_size(iterations) <= exhaustive_limit:
        return list(combinations_with_replacement(range(len(GRID)), iterations))
    from wavegrad_tf.schedules import PRESETS

    ends = [i for i, b in enumerate(GRID) if f"{b:.0e}"[0] in "125"]
    out = [snap(np.geomspace(GRID[a], GRID[b], iterations)) for a, b in combinations_with_replacement(ends, 2)]
    out += [snap(b) for b in (preset() for preset in PRESETS.values()) if len(b) == iterations and b.max() <= GRID[-1]]
    return list(dict.fromkeys(out))


def moves(current: Candidate, position: int) -> list[Candidate]:
    """`current` with the beta at `position` at every grid value between its neighbours."""
    low = current[position - 1] if position > 0 else 0
    high = current[position + 1] if position + 1 < len(current) else len(GRID) - 1
    return [current[:position] + (v,) + current[position + 1:] for v in range(low, high + 1)]


class BudgetExhausted(Exception):
    pass


_worker_score: Optional[Callable] = None


def _init_worker(factory) -> None:
    global _worker_score
    _worker_score = factory()


def _score_in_worker(betas: list[float]) -> float:
    return _worker_score(np.asarray(betas))


class Search:
    """The search state: scores so far (from scores.jsonl), the budget, and the scorer or its workers.

    `factory()` builds the scorer `score(betas) -> float` (lower is better) in each worker process; it
    must be picklable and have `settings()`, a dict that identifies what it scores (kept in search.json
    so that a restart with other settings is refused).
    """

    def __init__(self, factory, iterations: int, output: str | os.PathLike, budget_seconds: float = math.inf,
                 workers: int = 1, exhaustive_limit: int = 2000, progress: bool = False):
        self.factory, self.iterations, self.workers, self.progress = factory, iterations, workers, progress
        self.bar = None  # run's progress bar
        self.exhaustive_limit = exhaustive_limit
        self.output = Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + budget_seconds
        self.settings = {"iterations": iterations, "exhaustive_limit": exhaustive_limit, "scorer": factory.settings()}
        settings_path = self.output / "search.json"
        if settings_path.exists():
            try:
                previous = json.loads(settings_path.read_text())
            except (ValueError, UnicodeDecodeError):
                raise UserError(f"--output {self.output}: search.json is not JSON (a damaged search); use a new "
                                "folder") from None
            if previous != self.settings:
                raise UserError(f"--output {self.output}: holds a search with other settings ({previous}); "
                                 "use a new folder or the same settings")
        else:
            settings_path.write_text(json.dumps(self.settings, indent=1))
        self.log_path = self.output / "scores.jsonl"
        self.scores = self._read_log()

    def _read_log(self) -> dict[Candidate, float]:
        scores = {}
        path = self.log_path
        if path.exists():
            text = path.read_text()
            if text and not text.endswith("\n"):  # killed mid-line: new entries start on a line of their own
                with open(path, "a") as f:
                    f.write("\n")
            for number, line in enumerate(text.splitlines(), 1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # the line being written when the last run was killed
                    continue
                try:
                    scores[tuple(int(i) for i in entry["index"])] = float(entry["score"])
                except (KeyError, TypeError, ValueError):
                    raise UserError(f"{path}: line {number} is not a scored schedule ({line[:80]}); use a new "
                                    "--output or remove the line") from None
        return scores

    def _record(self, candidate: Candidate, score: float) -> None:
        score = score if math.isfinite(score) else math.inf
        self.scores[candidate] = score
        with open(self.log_path, "a") as f:
            f.write(json.dumps({"index": list(candidate), "betas": betas_of(candidate), "score": score}) + "\n")
        if self.best() == candidate:
            self._write_best(complete=False)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{self.scores[self.best()]:.4f}", refresh=False)

    def best(self) -> Candidate:
        """Lowest score; ties go to the smaller index tuple, so the answer does not depend on arrival order."""
        return min(self.scores, key=lambda c: (self.scores[c], c))

    def _write_best(self, complete: bool) -> Path:
        from wavegrad_tf.schedules import noise_levels

        best = self.best()
        path = self.output / "schedule.yaml"
        content = {"betas": betas_of(best), "score": self.scores[best], "iterations": self.iterations,
                   "final_noise_level": float(noise_levels(np.array(betas_of(best)))[-1]),
                   "schedules_scored": len(self.scores), "complete": complete}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(content, sort_keys=False))
        os.replace(tmp, path)  # a kill mid-write leaves the previous best, never half a file
        return path

    def score_all(self, candidates: Sequence[Candidate]) -> list[float]:
        todo = [c for c in dict.fromkeys(candidates) if c not in self.scores]
        if self.pool is None:
            for candidate in todo:
                self._check_budget()
                self._record(candidate, self.scorer(np.asarray(betas_of(candidate))))
        else:
            pending, queue = {}, list(todo)
            try:
                while queue or pending:
                    while queue and len(pending) < 2 * self.workers:
                        self._check_budget()
                        candidate = queue.pop(0)
                        pending[self.pool.submit(_score_in_worker, betas_of(candidate))] = candidate
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._record(pending.pop(future), future.result())
            finally:
                for future, candidate in pending.items():  # work already running is kept, not wasted
                    if not future.cancel():
                        self._record(candidate, future.result())
        return [self.scores[c] for c in candidates]

    def _check_budget(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExhausted

    def run(self) -> dict:
        """Runs until the descent converges or the budget ends; returns schedule.yaml's content."""
        from wavegrad_tf.progress import bar

        self.pool, self.scorer = None, None
        self.bar = bar(unit="schedule", show=self.progress, desc="scored")
        if self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(self.factory,))
        else:
            self.scorer = self.factory()
        complete = False
        try:
            starts = seeds(self.iterations, self.exhaustive_limit)
            # The best seed, not the best in the log: a resumed run must start where the first one did.
            current = min(zip(self.score_all(starts), starts))[1]
            if grid_size(self.iterations) > self.exhaustive_limit:
                changed = True
                while changed:
                    changed = False
                    for position in range(self.iterations):
                        candidates = moves(current, position)
                        scores = self.score_all(candidates)
                        best = min(zip(scores, candidates))[1]
                        changed, current = changed or best != current, best
            complete = True
        except BudgetExhausted:
            pass
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
            self.bar.close()
        if not self.scores:
            raise BudgetExhausted("the budget ended before the first schedule was scored")
        return yaml.safe_load(self._write_best(complete).read_text())


class MelDistance:
    """Scorer factory: log-mel L1 of a trained run's vocoded clips (the middle `clip_seconds` of up to
    `clips` files), averaged; the same seed and noise for every schedule."""

    def __init__(self, run: Run, files: Sequence[str | os.PathLike], clips: int = 4,
                 clip_seconds: float = 1.0, seed: int = 0, threads: Optional[int] = None):
        self.run, self.files, self.clips_wanted = run, [str(f) for f in files], clips
        self.clip_seconds, self.seed, self.threads = clip_seconds, seed, threads
        self.clips = None

    def check(self) -> None:
        """Fails here, with the reason, what would otherwise fail inside every worker; picks the clips (the first
        `clips` files long enough and not silent, the rule train and evaluate apply)."""
        from wavegrad_tf.audio import AudioError, check_audio, load_audio

        if not self.run.config.diffusion.continuous:
            raise UserError(f"--model {self.run.name}: a discrete-index model (diffusion.continuous: false) "
                            "samples only with its training schedule")
        if not self.run.has_weights:
            raise UserError(f"--model {self.run.name}: {self.run.describe_weights()}")
        audio_cfg = self.run.config.audio
        hop = audio_cfg.hop_length
        length = int(min(self.clip_seconds, 3600.0) * audio_cfg.sample_rate) // hop * hop
        segments, skipped = {}, {}
        for path in self.files:
            if len(segments) == self.clips_wanted:
                break
            try:
                audio = load_audio(path, audio_cfg.sample_rate)
                check_audio(audio, path, max(length, audio_cfg.win_length))
            except AudioError as e:
                skipped[path] = e.description
                continue
            start = (len(audio) - length) // 2 // hop * hop
            segments[path] = audio[start:start + length]
        if not segments or not length:
            reasons = sorted({r.split(" (")[0] for r in skipped.values()})
            raise UserError(f"no clip to score among {len(self.files)} files: each must hold --clip_seconds "
                            f"{self.clip_seconds:g} s of audio that is not silent (skipped {len(skipped)}: "
                            f"{', '.join(reasons) or 'none'}); expected a folder of speech")
        self.files, self.clips = list(segments), np.stack(list(segments.values()))

    def settings(self) -> dict:
        return {"model": os.path.abspath(self.run.folder), "files": self.files, "clip_seconds": self.clip_seconds,
                "seed": self.seed}

    def __call__(self) -> Callable[[np.ndarray], float]:
        import tensorflow as tf

        from wavegrad_tf import diffusion, mel
        from wavegrad_tf.model import load_network

        if self.clips is None:
            self.check()
        hardware.configure_tensorflow(self.threads)
        cfg, network = self.run.config, load_network(self.run)
        clips = self.clips
        mels = mel.log_mel_spectrogram(clips, cfg.audio)
        eps = tf.function(lambda y, m, c: network([y, m, c], training=False), reduce_retracing=True, autograph=False)

        def score(betas: np.ndarray) -> float:
            # Without the consistency projection: it rescales the output's bands to the mel, which would leave
            # log-mel L1 little to tell schedules apart by.
            audio = diffusion.Sampler(eps, cfg, betas, Consistency())(mels, PositionalNoise(self.seed))
            if not np.all(np.isfinite(audio.numpy())):  # a schedule that diverges
                return math.inf
            return float(mel.log_mel_l1(audio, clips, cfg.audio))

        return score




def search(run: Run, output: str | os.PathLike, iterations: int = 6, audio_dir=None, clips: int = 4,
           clip_seconds: float = 1.0, seed: int = 0, workers: int = 2, budget_minutes: float = 30.0,
           exhaustive_limit: int = 2000, progress: bool = False) -> dict:
    """Searches `iterations`-step schedules for `run`, scored on `audio_dir` or its held-out clips; returns
    schedule.yaml's content."""
    from wavegrad_tf.evaluate_lib import evaluation_files
    from wavegrad_tf.vocoders.checkpoint import RunSource

    for name, value in (("iterations", iterations), ("workers", workers), ("clips", clips),
                        ("exhaustive_limit", exhaustive_limit)):
        if value < 1:
            raise UserError(f"--{name}: expected >= 1, got {value}")
    for name, value in (("budget_minutes", budget_minutes), ("clip_seconds", clip_seconds)):
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"--{name}: expected a positive number, got {value}")
    files = evaluation_files(RunSource(run), audio_dir)
    threads = max(1, hardware.usable_cpus() // workers)
    factory = MelDistance(run, files, clips, clip_seconds, seed, threads)
    factory.check()
    return Search(factory, iterations, output, budget_minutes * 60, workers, exhaustive_limit, progress).run()
