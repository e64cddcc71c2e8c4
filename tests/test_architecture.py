"""Where knowledge lives: only `wavegrad_tf.runs` names the files and folders of a run, and one plan is built per
training start and per model load."""

import ast

from conftest import ROOT

LIBRARY = [p for p in sorted((ROOT / "wavegrad_tf").rglob("*.py")) + sorted((ROOT / "export").rglob("*.py"))
           if p.name != "runs.py"]


def _run_names() -> tuple[set, set]:
    """(file names, folder names) of a run, from runs.py itself."""
    from wavegrad_tf import runs

    return {runs.CONFIG, runs.SPLIT, runs.WEIGHTS}, {runs.CHECKPOINTS, runs.CACHE, runs.WORKERS, *runs.LOGS.values()}


def _docstrings(tree) -> set:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def test_only_runs_py_names_a_run_s_files_and_folders():
    """A file name of a run (config.yaml, data_split.json, weights.npz) in any string of code, or a folder name of one
    (checkpoints, audio_cache, workers, train, validation) joined onto a path with `/`, anywhere but runs.py: each
    is a second place that knows a run's layout. Docstrings may describe it."""
    files, folders = _run_names()
    found = []
    for path in LIBRARY:
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in files if name in node.value]
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                    and node.right.value in folders:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: / {node.right.value!r}")
    assert not found, "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    """The check above, on a file that does name them, finds both kinds (it cannot pass by finding nothing)."""
    files, folders = _run_names()
    source = 'x = folder / "checkpoints"\ny = f"{folder}/config.yaml"\n'
    tree = ast.parse(source)
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert any("config.yaml" in c for c in constants) and "config.yaml" in files
    assert any(isinstance(n, ast.BinOp) and isinstance(n.right, ast.Constant) and n.right.value in folders
               for n in ast.walk(tree))


def _counting(monkeypatch, target, name: str, counts: dict) -> None:
    real = getattr(target, name)

    def wrapper(*args, **kwargs):
        counts[name] = counts.get(name, 0) + 1
        return real(*args, **kwargs)
    monkeypatch.setattr(target, name, wrapper)


def test_one_sampling_plan_per_load(tiny_run, tiny_tflite, tmp_path, speech, monkeypatch):
    """Metadata.plan once per vocoding of a run (its checks and its load share it), and wavegrad.json read once per
    vocoding of a .tflite file."""
    import soundfile as sf

    from conftest import tflite_files
    from wavegrad_tf.infer_lib import vocode_file
    from wavegrad_tf.runtime import Metadata

    sf.write(tmp_path / "in.wav", speech[:8000], 16000)
    counts = {}
    _counting(monkeypatch, Metadata, "plan", counts)
    _counting(monkeypatch, Metadata, "load", counts)
    vocode_file(str(tiny_run), str(tmp_path / "in.wav"), str(tmp_path / "run.wav"), seed=0, iterations=6)
    assert counts == {"plan": 1}
    counts.clear()
    vocode_file(str(tflite_files(tiny_tflite)["float16"]), str(tmp_path / "in.wav"), str(tmp_path / "lite.wav"), seed=0)
    assert counts == {"load": 1}


def test_one_training_plan_per_start(tiny_run, tmp_path, monkeypatch):
    """A resumed training start: one plan, one Run for the run folder, the resume rules applied once, the precision
    decided once."""
    import shutil

    from wavegrad_tf import hardware, runs, train_lib

    shutil.copytree(tiny_run, tmp_path / "run")
    counts = {}
    _counting(monkeypatch, train_lib, "plan", counts)
    _counting(monkeypatch, hardware, "training_precision", counts)
    _counting(monkeypatch, runs.Run, "continued_config", counts)
    made = []
    real_init = runs.Run.__init__

    def init(self, folder, *args, **kwargs):
        made.append(str(folder))
        real_init(self, folder, *args, **kwargs)
    monkeypatch.setattr(runs.Run, "__init__", init)
    train_lib.run(None, str(tmp_path / "run"), 150)
    assert counts == {"plan": 1, "training_precision": 1, "continued_config": 1}
    assert made.count(str(tmp_path / "run")) == 1, made
