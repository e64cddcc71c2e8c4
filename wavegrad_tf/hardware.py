"""What this machine computes fast, decided in one place: the compute precision and the size of thread pools.

Nothing here imports TensorFlow at module level: the LiteRT runner and the REST client size their threads
with it too. Every decision takes the facts it rests on as an argument (`Machine`), so tests fake the CPU.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from pathlib import Path
from typing import Optional

from wavegrad_tf.errors import UserError

# Keras dtype policies a training run may ask for; "auto" is decided by `training_precision`.
TRAINING_PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# What a vocoder computes in (`--precision` of infer, evaluate, schedule_search and the SavedModel exporter),
# and the Keras policy each one means.
VOCODING_PRECISIONS = ("auto", "float32", "bfloat16")
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# Measured on 2 cores of an AVX2-only AMD EPYC: the demo's mixed_bfloat16 training ran 0.13 steps/s, float32
# 0.78 (docs/training.md, "Precision on each CPU").
EMULATED_BFLOAT16_SLOWDOWN = 6.0
# TensorFlow's mixed-precision guide: float16 speeds up NVIDIA GPUs of compute capability 7.0 and newer
# (tensor cores); older ones run it no faster than float32.
FLOAT16_MIN_COMPUTE_CAPABILITY = (7, 0)


@dataclasses.dataclass(frozen=True)
class Machine:
    """The facts a precision decision rests on."""

    arch: str  # platform.machine(): x86_64, aarch64, arm64, ...
    cpu_model: str = ""
    cpu_flags: frozenset = frozenset()  # /proc/cpuinfo "flags" (x86) or "Features" (aarch64)
    gpus: tuple = ()  # the compute capability (major, minor) of each GPU, () where unknown
    tpu: bool = False

    @property
    def native_bfloat16(self) -> bool:
        """The CPU computes bfloat16 in hardware: x86 AVX512_BF16 or AMX, aarch64 BF16 (ARMv8.6)."""
        if self.arch in ("x86_64", "AMD64", "i686", "x86"):
            return bool(self.cpu_flags & {"avx512_bf16", "amx_bf16"})
        if self.arch in ("aarch64", "arm64"):
            return "bf16" in self.cpu_flags
        return False

    @property
    def int8_dot_product(self) -> bool:
        """The CPU multiplies int8 vectors in one instruction: x86 VNNI (AVX512_VNNI, AVX_VNNI) or AMX, aarch64 dot
        product (ARMv8.2 asimddp). Without it XNNPACK's int8 kernels widen to 16 bits and are no faster than
        float32's."""
        if self.arch in ("x86_64", "AMD64", "i686", "x86"):
            return bool(self.cpu_flags & {"avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8"})
        if self.arch in ("aarch64", "arm64"):
            return "asimddp" in self.cpu_flags
        return False

    def describe(self) -> str:
        """One line: the CPU model and the flags precision depends on (what benchmarks print above a table)."""
        isa = sorted(self.cpu_flags & {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni",
                                       "amx_bf16", "amx_int8", "bf16", "asimddp", "i8mm", "sve"})
        return f"{self.cpu_model or 'unknown CPU'} ({self.arch}; {' '.join(isa) or 'no listed vector extensions'})"


def parse_cpuinfo(text: str) -> tuple[str, frozenset]:
    """(model name, feature flags) from the text of /proc/cpuinfo, on x86 and aarch64 alike."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return model, flags


def this_machine(gpus: tuple = (), tpu: bool = False) -> Machine:
    """The CPU this process runs on (read from /proc/cpuinfo, or sysctl on macOS); accelerators as given."""
    arch, model, flags = platform.machine(), "", frozenset()
    try:
        model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        if platform.system() == "Darwin":
            model, flags = _darwin_cpu()
    return Machine(arch=arch, cpu_model=model, cpu_flags=flags, gpus=tuple(gpus), tpu=tpu)


def _darwin_cpu() -> tuple[str, frozenset]:
    import subprocess

    def sysctl(name: str) -> str:
        result = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    return sysctl("machdep.cpu.brand_string"), frozenset({"bf16"} if sysctl("hw.optional.arm.FEAT_BF16") == "1" else ())


def tensorflow_gpus() -> tuple:
    """The compute capability (major, minor) of each GPU TensorFlow sees."""
    import tensorflow as tf

    return tuple(tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability") or ())
                 for gpu in tf.config.list_physical_devices("GPU"))


@dataclasses.dataclass(frozen=True)
class Choice:
    precision: str
    reason: str
    warning: Optional[str] = None

    def report(self) -> str:
        return f"precision: {self.precision} ({self.reason})"


def training_precision(requested: str, machine: Machine) -> Choice:
    """The Keras dtype policy a training run computes in. "auto": bfloat16 where the hardware has it (TPU, or a
    CPU with native bfloat16, when no GPU is used), float16 with loss scaling on GPUs with tensor cores, float32
    otherwise. An explicit value is kept; bfloat16 forced on a CPU without it gets a warning."""
    if requested not in TRAINING_PRECISIONS:
        raise UserError(f"train.precision: expected one of {list(TRAINING_PRECISIONS)}, got {requested!r}")
    if requested != "auto":
        warning = None
        if requested == "mixed_bfloat16" and not (machine.tpu or machine.gpus or machine.native_bfloat16):
            warning = _emulated_bfloat16("training")
        return Choice(requested, "as configured", warning)
    if machine.tpu:
        return Choice("mixed_bfloat16", "a TPU computes in bfloat16")
    if machine.gpus:
        if all(c and c >= FLOAT16_MIN_COMPUTE_CAPABILITY for c in machine.gpus):
            return Choice("mixed_float16", "GPUs with tensor cores: float16 compute with loss scaling")
        return Choice("float32", "a GPU older than compute capability 7.0 runs float16 no faster")
    if machine.native_bfloat16:
        return Choice("mixed_bfloat16", "this CPU computes bfloat16 natively")
    return Choice("float32", "this CPU has no native bfloat16")


def vocoding_precision(requested: str, machine: Machine) -> Choice:
    """What a vocoder computes in. "auto" is float32 on every machine: sampling compounds rounding over its
    steps (the pretrained model's held-out log-mel L1 was 10 % worse in bfloat16), and scores and exports must
    not depend on the CPU that made them. bfloat16 is an explicit choice, warned about on CPUs without it."""
    if requested not in VOCODING_PRECISIONS:
        raise UserError(f"--precision: expected one of {list(VOCODING_PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return Choice("float32", "bfloat16 sampling costs quality; --precision bfloat16 to trade it for speed")
    warning = _emulated_bfloat16("vocoding") if requested == "bfloat16" and not machine.native_bfloat16 else None
    return Choice(requested, "as asked", warning)


def _emulated_bfloat16(what: str) -> str:
    return (f"bfloat16 {what} on a CPU without native bfloat16 is emulated: about {EMULATED_BFLOAT16_SLOWDOWN:g}x "
            "slower than float32 (measured on an AVX2 CPU); float32 or auto is faster here")


def recommended_tflite_variant(machine: Machine) -> Choice:
    """The TFLite file to run on this CPU: the fastest of the files whose audio stays within 5 % of float32's
    (full int8 is faster still but 9 % away: docs/deployment.md). dynamic_int8 where the CPU has int8 dot products
    (2.2x float32's speed on an AVX-512 VNNI machine), float16 elsewhere (on an AVX2-only CPU dynamic int8 ran
    1.23x slower than float16, which runs at float32's speed from half the file)."""
    if machine.int8_dot_product:
        return Choice("dynamic_int8", "this CPU has int8 dot products")
    return Choice("float16", "this CPU has no int8 dot products: int8 runs no faster than float here")


# -- threads ----------------------------------------------------------------------------------------------
def usable_cpus(cgroup_root: str | os.PathLike = "/sys/fs/cgroup", proc_self: str | os.PathLike = "/proc/self") -> int:
    """The CPUs this process may use: its affinity mask, capped by the CPU quota of its cgroup (a container's
    --cpus), not the host's core count."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_self)
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def cgroup_cpu_quota(cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
                     proc_self: str | os.PathLike = "/proc/self") -> Optional[float]:
    """The tightest CPU quota (in CPUs) on this process's cgroup and its ancestors, v2 or v1; None if unlimited."""
    root, limits = Path(cgroup_root), []
    try:
        lines = (Path(proc_self) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: <root>/<path>/cpu.max holds "quota period" or "max period"
            files = [(root / p / "cpu.max", None) for p in _ancestors(path)]
        elif "cpu" in controllers.split(","):  # v1: cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us
            base = next((root / d for d in (controllers, "cpu", "cpu,cpuacct") if (root / d).is_dir()), None)
            files = [] if base is None else [(base / p / "cpu.cfs_quota_us", base / p / "cpu.cfs_period_us")
                                             for p in _ancestors(path)]
        else:
            continue
        for quota_file, period_file in files:
            try:
                if period_file is None:
                    quota, period = quota_file.read_text().split()[:2]
                else:
                    quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
            except (OSError, ValueError):
                continue
            if quota not in ("max", "-1") and float(period) > 0:
                limits.append(float(quota) / float(period))
    return min(limits) if limits else None


def _ancestors(path: str) -> list[str]:
    """'/a/b' -> ['a/b', 'a', '']: the cgroup and each parent up to the root, relative to the mount."""
    parts = [p for p in path.strip("/").split("/") if p]
    return ["/".join(parts[:k]) for k in range(len(parts), -1, -1)]


def configure_tensorflow(threads: Optional[int] = None) -> int:
    """Sizes TensorFlow's thread pools to the usable CPUs (or `threads`); returns the size. Call before the
    first TensorFlow op: once TensorFlow has started its pools they cannot change, and this leaves them be."""
    import tensorflow as tf

    n = threads or usable_cpus()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # already initialised (a library user ran ops first): keep what is there
        return tf.config.threading.get_intra_op_parallelism_threads() or n
    return n
