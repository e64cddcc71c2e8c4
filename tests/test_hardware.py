"""The machine decides the precision and the thread pools: faked CPUs, a restricted affinity mask, cgroup quotas."""

import shutil

import pytest
import yaml

from conftest import run_module
from wavegrad_tf import hardware
from wavegrad_tf.errors import UserError
from wavegrad_tf.hardware import Machine

# Flags as /proc/cpuinfo lists them (abridged to what matters, plus neighbours that must not count).
AVX2 = Machine("x86_64", "AMD EPYC 7B12", frozenset("sse4_2 avx avx2 fma f16c".split()))
AVX512_BF16 = Machine("x86_64", "AMD EPYC 9B14", frozenset("avx2 fma avx512f avx512_vnni avx512_bf16".split()))
AMX = Machine("x86_64", "Intel Xeon 8481C", frozenset("avx2 avx512f avx512_fp16 amx_tile amx_int8 amx_bf16".split()))
AVX512_NO_BF16 = Machine("x86_64", "Intel Xeon 8259CL", frozenset("avx2 fma avx512f avx512_vnni".split()))
NEOVERSE_V1 = Machine("aarch64", "", frozenset("fp asimd sve i8mm bf16 asimddp".split()))
NEOVERSE_N1 = Machine("aarch64", "", frozenset("fp asimd asimddp".split()))


@pytest.mark.parametrize("machine, expected", [
    (AVX2, "float32"), (AVX512_NO_BF16, "float32"), (AVX512_BF16, "mixed_bfloat16"), (AMX, "mixed_bfloat16"),
    (NEOVERSE_V1, "mixed_bfloat16"), (NEOVERSE_N1, "float32"),
    (Machine("x86_64", "", AVX2.cpu_flags, gpus=((8, 0),)), "mixed_float16"),
    (Machine("x86_64", "", AVX512_BF16.cpu_flags, gpus=((7, 5), (8, 6))), "mixed_float16"),
    (Machine("x86_64", "", AVX2.cpu_flags, gpus=((6, 1),)), "float32"),
    (Machine("x86_64", "", AVX2.cpu_flags, tpu=True), "mixed_bfloat16"),
], ids=["avx2", "avx512-no-bf16", "avx512-bf16", "amx", "aarch64-bf16", "aarch64", "gpu-ampere", "gpus-turing-ampere",
        "gpu-pascal", "tpu"])
def test_auto_training_precision_follows_the_hardware(machine, expected):
    choice = hardware.training_precision("auto", machine)
    assert choice.precision == expected and choice.warning is None
    assert choice.report().startswith(f"precision: {expected} (") and len(choice.reason) > 10


@pytest.mark.parametrize("machine, expected", [
    (AVX2, "float16"), (AVX512_NO_BF16, "dynamic_int8"), (AVX512_BF16, "dynamic_int8"), (AMX, "dynamic_int8"),
    (NEOVERSE_N1, "dynamic_int8"), (Machine("aarch64", "", frozenset("fp asimd".split())), "float16"),
], ids=["avx2", "avx512-vnni", "avx512-bf16", "amx", "aarch64-dotprod", "aarch64-v8.0"])
def test_the_recommended_tflite_file_follows_int8_dot_products(machine, expected):
    """dynamic int8 only where the CPU has int8 dot products: on an AVX2-only CPU it ran slower than float16."""
    assert hardware.recommended_tflite_variant(machine).precision == expected


def test_the_reason_says_why():
    assert hardware.training_precision("auto", AVX2).report() == "precision: float32 (this CPU has no native bfloat16)"
    assert "natively" in hardware.training_precision("auto", AVX512_BF16).reason


def test_an_explicit_precision_wins_and_forced_bfloat16_is_warned_about():
    assert hardware.training_precision("float32", AVX512_BF16).precision == "float32"
    forced = hardware.training_precision("mixed_bfloat16", AVX2)
    assert forced.precision == "mixed_bfloat16" and "6x slower" in forced.warning
    assert hardware.training_precision("mixed_bfloat16", AMX).warning is None
    assert hardware.vocoding_precision("bfloat16", AVX2).warning and not hardware.vocoding_precision("bfloat16", AMX).warning
    with pytest.raises(UserError, match=r"train.precision: expected one of .*'auto'.*got 'bf16'"):
        hardware.training_precision("bf16", AVX2)


@pytest.mark.parametrize("machine", [AVX2, AVX512_BF16, AMX, NEOVERSE_V1])
def test_auto_vocoding_is_float32_everywhere(machine):
    """Scores and exports must not depend on the CPU that made them."""
    assert hardware.vocoding_precision("auto", machine).precision == "float32"


def test_cpuinfo_is_parsed_on_x86_and_aarch64():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert hardware.parse_cpuinfo(x86) == ("AMD EPYC 7B12", frozenset({"fpu", "avx2", "fma"}))
    arm = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd bf16 sve\nCPU implementer\t: 0x41\n"
    model, flags = hardware.parse_cpuinfo(arm)
    assert Machine("aarch64", model, flags).native_bfloat16 and "bf16" in flags


def _cgroup(tmp_path, lines, files):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cgroup").write_text("\n".join(lines) + "\n")
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text)
    return tmp_path / "fs", tmp_path / "proc"


def test_cgroup_v2_quota_caps_the_cpus(tmp_path):
    root, proc = _cgroup(tmp_path, ["0::/job/step"], {"cpu.max": "max 100000\n", "job/cpu.max": "150000 100000\n",
                                                      "job/step/cpu.max": "max 100000\n"})
    assert hardware.cgroup_cpu_quota(root, proc) == 1.5
    assert hardware.usable_cpus(root, proc) == min(2, len(__import__("os").sched_getaffinity(0)))


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    root, proc = _cgroup(tmp_path, ["4:memory:/x", "3:cpu,cpuacct:/docker/abc"],
                         {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "100000\n",
                          "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
                          "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert hardware.cgroup_cpu_quota(root, proc) == 1.0 and hardware.usable_cpus(root, proc) == 1
    shutil.rmtree(root / "cpu,cpuacct" / "docker")
    assert hardware.cgroup_cpu_quota(root, proc) is None


CHILD = """
import json, os
from wavegrad_tf import hardware
import ai_edge_litert.options as options
seen = {}
class Spy(options.CpuOptions):
    def __init__(self, **kwargs):
        seen.update(kwargs)
        super().__init__(**kwargs)
options.CpuOptions = Spy
from wavegrad_tf.vocoders import litert
litert.computes_in_int8 = lambda path: False  # no file needed: only the options it builds are looked at
try:
    litert.compile_model("/nonexistent.tflite")
except Exception:
    pass
n = hardware.configure_tensorflow()
import tensorflow as tf
print(json.dumps({"usable": hardware.usable_cpus(), "configured": n,
                  "intra": tf.config.threading.get_intra_op_parallelism_threads(),
                  "inter": tf.config.threading.get_inter_op_parallelism_threads(),
                  "litert": seen.get("num_threads")}))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="Linux affinity masks only")
def test_thread_pools_follow_a_restricted_affinity_mask():
    import json
    import os

    cores = sorted(os.sched_getaffinity(0))
    script = f"import os; os.sched_setaffinity(0, {{{cores[0]}}})\n" + CHILD
    got = json.loads(run_module(["-c", script]).stdout.strip().splitlines()[-1])
    assert got == {"usable": 1, "configured": 1, "intra": 1, "inter": 1, "litert": 1}
    if len(cores) > 1:
        unrestricted = json.loads(run_module(["-c", CHILD]).stdout.strip().splitlines()[-1])
        assert unrestricted["intra"] == unrestricted["litert"] == hardware.usable_cpus() == len(cores)


def test_a_fine_tuning_decides_its_own_precision(tiny_run, tmp_path, monkeypatch, capsys):
    """The quick start's bug: fine-tuning a model trained in bfloat16 took its precision along to a CPU without
    bfloat16 (6x slower). Now the source's precision is its machine's: this one decides, says so, and records it."""
    from wavegrad_tf import train_lib

    source = tmp_path / "bf16_source"
    shutil.copytree(tiny_run, source, ignore=shutil.ignore_patterns("audio_cache"))
    stored = yaml.safe_load((source / "config.yaml").read_text())
    stored["train"]["precision"] = "mixed_bfloat16"
    (source / "config.yaml").write_text(yaml.safe_dump(stored))
    monkeypatch.setattr(hardware, "this_machine", lambda gpus=(), tpu=False: AVX2)
    train_lib.run(None, str(tmp_path / "tuned"), steps=1, init_from=str(source), cache_dir=str(tmp_path / "cache"))
    out = capsys.readouterr().out
    assert "precision: float32 (this CPU has no native bfloat16)" in out
    assert "fine-tuning with train.precision: 'mixed_bfloat16' -> 'float32'" in out
    assert yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())["train"]["precision"] == "float32"
    # An explicit request is kept, even where it is slow: decided (and printed) before the corpus is read, so a
    # corpus of one unreadable file stops the run there, before a bfloat16 step is traced, and leaves no folder.
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.wav").write_bytes(b"RIFF\0\0not audio")
    with pytest.raises(UserError, match="no usable training audio"):
        train_lib.run(None, str(tmp_path / "forced"), steps=1, init_from=str(source), cache_dir=str(tmp_path / "cache"),
                      data_dir=str(tmp_path / "unreadable"), overrides=["train.precision=mixed_bfloat16"])
    assert "precision: mixed_bfloat16 (as configured)" in capsys.readouterr().out
    assert not (tmp_path / "forced").exists()


def test_demo_config_leaves_the_precision_to_the_machine():
    from wavegrad_tf.config import load_config

    assert load_config("demo").train.precision == "auto" and load_config("base").train.precision == "auto"
