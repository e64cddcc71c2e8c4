"""Where knowledge lives: only `wavegrad_tf.runs` names the files and folders of a run, one plan is built per
training start and per model load, and the modules import each other in layers (no cycles, at most 12 deep)."""

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


PACKAGES = ("vocoders", "runtime", "pretrained")  # a folder of the library is one node, as it is one layer


def _node(module: str):
    """The graph node of a dotted module name inside the library (`export`'s modules each their own: it holds
    libraries and command lines), or None for anything else."""
    parts = module.split(".")
    if parts[:2] == ["wavegrad_tf", "export"]:
        parts = parts[1:]
    if parts[0] == "export":
        return ".".join(parts[:2])
    return parts[1] if parts[0] == "wavegrad_tf" and len(parts) > 1 else None


def import_graph() -> dict:
    """{node: nodes it imports}: every import in a file (at the top, in a function, or for annotations only)."""
    files = sorted((ROOT / "wavegrad_tf").rglob("*.py")) + sorted((ROOT / "export").rglob("*.py"))
    nodes = {_node(".".join(p.relative_to(ROOT).with_suffix("").parts).replace(".__init__", "")): p for p in files}
    nodes.pop(None, None)
    graph = {}
    for path in files:
        source = _node(".".join(path.relative_to(ROOT).with_suffix("").parts).replace(".__init__", ""))
        if source is None:
            continue
        edges = graph.setdefault(source, set())
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            edges.update(t for t in map(_node, names) if t in nodes and t != source)
    return graph


def depth(graph: dict) -> dict:
    """{node: its level}: 1 for a node importing nothing of the library, else 1 + the deepest it imports. A cycle
    raises, naming it."""
    levels, visiting = {}, []

    def level(node):
        if node in visiting:
            raise AssertionError("import cycle: " + " -> ".join(visiting[visiting.index(node):] + [node]))
        if node not in levels:
            visiting.append(node)
            levels[node] = 1 + max((level(n) for n in graph.get(node, ())), default=0)
            visiting.pop()
        return levels[node]
    for node in graph:
        level(node)
    return levels


def test_the_import_graph_has_layers_no_cycles_at_most_12_deep():
    levels = depth(import_graph())
    assert len(levels) > 45  # every module was read
    deepest = max(levels.values())
    assert deepest <= 12, sorted(levels.items(), key=lambda kv: -kv[1])[:5]
    assert levels["errors"] == 1 and levels["train"] > levels["trainer"] > levels["model"] > levels["errors"]


def test_the_depth_check_finds_a_cycle_and_counts_levels():
    assert depth({"a": {"b"}, "b": {"c"}, "c": set()}) == {"a": 3, "b": 2, "c": 1}
    try:
        depth({"a": {"b"}, "b": {"a"}})
    except AssertionError as e:
        assert "a -> b -> a" in str(e)
    else:
        raise AssertionError("the cycle a -> b -> a went unseen")


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
