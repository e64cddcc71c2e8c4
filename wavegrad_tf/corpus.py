"""What a corpus job vocodes (`infer --input FOLDER|GLOB|@LIST --output FOLDER`, and `wavegrad_tf.beam`): the
inputs --input names, each with its path relative to the corpus (its key: the output's path below --output, and
what its noise is keyed by), and the report such a job writes. No TensorFlow.

    a folder        every .npy mel and audio file below it; keys relative to it
    a glob          `mels/**/*.npy` (recursive); keys relative to the glob's folder part
    @files.txt      one path per line (relative to the list's folder); keys relative to their common folder
"""

from __future__ import annotations

import dataclasses
import glob as globbing
import json
import os
from pathlib import Path

from wavegrad_tf.audio import AUDIO_EXTENSIONS
from wavegrad_tf.errors import UserError

INPUT_EXTENSIONS = (".npy", *AUDIO_EXTENSIONS)
REPORT = "report.json"


@dataclasses.dataclass(frozen=True)
class Item:
    source: Path  # the input file
    key: str  # its path relative to the corpus, with / separators

    def output(self, folder: Path, extension: str = ".wav") -> Path:
        return folder / Path(self.key).with_suffix(extension)


def is_corpus(spec: str) -> bool:
    """Whether --input names many files (a folder, a glob or @list) rather than one."""
    return spec.startswith("@") or globbing.has_magic(spec) or Path(spec).is_dir()


def items(spec: str) -> list[Item]:
    """The inputs `spec` names, sorted by key; a UserError naming it if it names none."""
    if spec.startswith("@"):
        listing = Path(spec[1:])
        try:
            lines = listing.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--input {spec}: cannot be read as a list of paths ({e})") from None
        paths = [(listing.parent / line.strip()).resolve() for line in lines if line.strip() and not line.startswith("#")]
        root = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else listing.parent
    elif globbing.has_magic(spec):
        paths = [Path(p).resolve() for p in globbing.glob(spec, recursive=True) if Path(p).is_file()]
        root = Path(*Path(spec).parts[:_magic_at(spec)]).resolve()
    else:
        root = Path(spec).resolve()
        paths = [p for p in root.rglob("*") if p.is_file()]
    found = sorted((Item(p, p.relative_to(root).as_posix()) for p in paths if p.suffix.lower() in INPUT_EXTENSIONS),
                   key=lambda item: item.key)
    if not found:
        raise UserError(f"--input {spec}: names no {'/'.join(INPUT_EXTENSIONS)} file")
    stems = {}
    for item in found:  # a.npy and a.wav would both be written as a.wav
        clash = stems.setdefault(str(Path(item.key).with_suffix("")), item.key)
        if clash != item.key:
            raise UserError(f"--input {spec}: {clash} and {item.key} would both be written as "
                            f"{Path(item.key).with_suffix('.wav')}; expected one input per name")
    return found


def _magic_at(spec: str) -> int:
    """How many leading parts of a glob have no wildcard."""
    parts = Path(spec).parts
    return next((i for i, part in enumerate(parts) if globbing.has_magic(part)), len(parts))


def check_output_folder(output: str | os.PathLike, spec: str) -> Path:
    output = Path(output)
    if output.suffix.lower() in AUDIO_EXTENSIONS or (output.exists() and not output.is_dir()):
        raise UserError(f"--output {output}: --input {spec} names many files; expected a folder to write them into")
    return output


def write_report(folder: Path, report: dict) -> Path:
    """<folder>/report.json, whole or not at all."""
    from wavegrad_tf.files import written_whole

    with written_whole(folder / REPORT) as partial:
        partial.write_text(json.dumps(report, indent=1))
    return folder / REPORT


def summary(report: dict) -> str:
    done, audio, failed = report["vocoded"], report["audio_seconds"], report["failed"]
    rtf = report["seconds"] / audio if audio else float("nan")
    return (f"vocoded {done} files ({audio:.1f} s of audio) in {report['seconds']:.1f} s, real-time factor "
            f"{rtf:.3f}; skipped {report['skipped']} already there; failed {len(failed)}"
            + (f" (listed in {report['path']})" if failed else ""))

