import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import ROOT, run_module
from toy_scorer import PlantedOptimum
from wavegrad_tf import schedules
from wavegrad_tf.schedule_search_lib import GRID, Search, grid_size, moves, seeds

PLANTED_4 = [3e-6, 2e-4, 7e-3, 4e-1]


def test_grid_is_the_papers():
    assert len(GRID) == 54 and GRID[0] == 1e-6 and GRID[-1] == 0.9 and GRID[9:12] == (1e-5, 2e-5, 3e-5)
    assert grid_size(6) == math.comb(59, 6)
    assert all(list(c) == sorted(c) for c in seeds(6, 2000)) and len(seeds(2, 2000)) == grid_size(2) == 1485
    assert moves((3, 10, 20), 1) == [(3, v, 20) for v in range(3, 21)]


def test_exhaustive_search_finds_the_planted_optimum(tmp_path):
    result = Search(PlantedOptimum([5e-5, 0.6]), 2, tmp_path).run()
    assert result["betas"] == [5e-5, 0.6] and result["score"] == 0.0
    assert result["complete"] and result["schedules_scored"] == 1485


def test_descent_finds_the_planted_optimum_and_writes_a_schedule_infer_reads(tmp_path, tiny_cfg):
    result = Search(PlantedOptimum(PLANTED_4), 4, tmp_path).run()
    assert result["betas"] == PLANTED_4 and result["complete"]
    assert result["schedules_scored"] < grid_size(4) / 100  # far from scoring the whole grid
    np.testing.assert_array_equal(schedules.schedule_for(tiny_cfg, schedule=str(tmp_path / "schedule.yaml")), PLANTED_4)


def test_parallel_workers_reach_the_same_best(tmp_path):
    serial = Search(PlantedOptimum(PLANTED_4[1:]), 3, tmp_path / "serial").run()
    parallel = Search(PlantedOptimum(PLANTED_4[1:]), 3, tmp_path / "parallel", workers=2).run()
    assert parallel["betas"] == serial["betas"] == PLANTED_4[1:]
    assert parallel["schedules_scored"] == serial["schedules_scored"]


def test_budget_stops_with_the_best_so_far_and_a_rerun_finishes(tmp_path):
    # About 100 of the 353 scores in the budget (10 ms each): margin for a loaded machine on both sides.
    stopped = Search(PlantedOptimum(PLANTED_4, delay=0.01), 4, tmp_path, budget_seconds=1.0).run()
    assert not stopped["complete"] and 0 < stopped["schedules_scored"]
    assert yaml.safe_load((tmp_path / "schedule.yaml").read_text())["betas"] == stopped["betas"]
    finished = Search(PlantedOptimum(PLANTED_4, delay=0.002), 4, tmp_path).run()
    assert finished["complete"] and finished["betas"] == PLANTED_4


def test_killed_search_continues_where_it_stopped_and_ends_at_the_same_best(tmp_path):
    uninterrupted = Search(PlantedOptimum(PLANTED_4), 4, tmp_path / "whole").run()
    out = tmp_path / "killed"
    script = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
              "from toy_scorer import PlantedOptimum\nfrom wavegrad_tf.schedule_search_lib import Search\n"
              f"Search(PlantedOptimum({PLANTED_4}, delay=0.01), 4, {str(out)!r}, workers=2).run()\n")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    log = out / "scores.jsonl"
    deadline = time.monotonic() + 120
    while (not log.exists() or len(log.read_text().splitlines()) < 100) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the search and its workers, mid-run
    proc.wait()
    before = len(log.read_text().splitlines())
    assert 100 <= before < uninterrupted["schedules_scored"]

    resumed = Search(PlantedOptimum(PLANTED_4), 4, out).run()
    entries = [json.loads(line) for line in log.read_text().splitlines()[before:]]
    rescored = {tuple(e["index"]) for e in entries} & {tuple(json.loads(line)["index"])
                                                      for line in log.read_text().splitlines()[:before - 1]}
    assert not rescored  # nothing scored before the kill was scored again
    assert resumed["betas"] == uninterrupted["betas"] == PLANTED_4 and resumed["complete"]
    assert resumed["schedules_scored"] == uninterrupted["schedules_scored"]


def test_a_line_cut_by_a_kill_is_ignored_and_not_glued_to_the_next(tmp_path):
    # A search killed after 20 scores, while writing the 21st: the first 20 lines of an uninterrupted one (a time
    # budget made this a race that a loaded machine lost before the first score).
    Search(PlantedOptimum(PLANTED_4), 4, tmp_path / "whole").run()
    (tmp_path / "cut").mkdir()
    shutil.copy(tmp_path / "whole" / "search.json", tmp_path / "cut")
    written = 20
    log = tmp_path / "cut" / "scores.jsonl"
    whole = (tmp_path / "whole" / "scores.jsonl").read_text().splitlines()
    log.write_text("".join(line + "\n" for line in whole[:written]) + '{"index": [1, 2')
    result = Search(PlantedOptimum(PLANTED_4), 4, tmp_path / "cut").run()
    lines = log.read_text().splitlines()
    assert lines[written] == '{"index": [1, 2' and len(lines) > written + 1
    assert all(json.loads(line)["betas"] for i, line in enumerate(lines) if i != written)
    assert result["betas"] == PLANTED_4


def test_restart_with_other_settings_is_refused(tmp_path):
    Search(PlantedOptimum([0.1]), 1, tmp_path).run()
    with pytest.raises(ValueError, match="other settings"):
        Search(PlantedOptimum([0.2]), 1, tmp_path)


def test_cli_searches_a_trained_model(tiny_run, tmp_path):
    out = tmp_path / "search"
    run_module(["-m", "wavegrad_tf.schedule_search", "--model", str(tiny_run), "--iterations", "1", "--output", str(out),
                "--clips", "2", "--clip_seconds", "0.5"])
    result = yaml.safe_load((out / "schedule.yaml").read_text())
    scores = [json.loads(line)["score"] for line in (out / "scores.jsonl").read_text().splitlines()]
    assert result["complete"] and len(scores) == 54 and result["score"] == min(scores) < max(scores)
    assert len(schedules.get_schedule(str(out / "schedule.yaml"))) == 1


def test_cli_refuses_a_discrete_model_before_starting_workers(tiny_run, tmp_path):
    run = tmp_path / "discrete"
    shutil.copytree(tiny_run, run)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("continuous: true", "continuous: false"))
    proc = run_module(["-m", "wavegrad_tf.schedule_search", "--model", str(run), "--iterations", "2", "--output",
                       str(tmp_path / "out")], check=False)
    assert proc.returncode != 0 and "samples only with its training schedule" in proc.stderr
