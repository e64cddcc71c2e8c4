"""The multi-speaker corpus of the pretrained model, built from Debian's Asterisk prompt packages
(`python -m wavegrad_tf.asterisk_corpus` is the command line).

Downloads `asterisk-core-sounds-{en,es,fr,it,ru}-g722` 1.6.1 with `apt-get download` (or takes the
.deb files from --debs), unpacks them with `dpkg -x`, decodes every prompt (16 kHz G.722, so a 7 kHz
band) to 16-bit FLAC, and writes:

    <output>/train/<speaker>/<language>/...flac      the training speakers
    <output>/held_out/<speaker>/<language>/...flac   the speaker kept out of training (--held_out)
    <output>/ATTRIBUTION.md, <output>/copyright/     who recorded what, under which licence

Four voices: Allison Smith (en, es; CC-BY-SA-3.0), June Wallack (fr; CC-BY-SA-3.0), Carlo Flora (it;
CC-BY-3.0) and the ivrvoice.ru speaker (ru; CC-BY-3.0), as each package's `copyright` file says.
The `silence/` prompts are left out. Needs the network (apt) once; training never does.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from wavegrad_tf.errors import UserError

VERSION = "1.6.1"
# language -> (speaker, folder in /usr/share/asterisk/sounds, licence)
VOICES = {
    "en": ("allison", "en_US_f_Allison", "CC-BY-SA-3.0"),
    "es": ("allison", "es_MX_f_Allison", "CC-BY-SA-3.0"),
    "fr": ("june", "fr_CA_f_June", "CC-BY-SA-3.0"),
    "it": ("carlo", "it_IT_m_Carlo", "CC-BY-3.0"),
    "ru": ("ivrvoice_ru", "ru_RU_f_IvrvoiceRU", "CC-BY-3.0"),
}
CREDITS = {
    "allison": "Allison Smith (theivrvoice.com), financial contributions by Digium, Inc.",
    "june": "June Wallack (junewallack.com); French translation by Clod Patry, Kristopher Lalletti and June "
            "Wallack; financial contributions by Digium, Inc., Unlimitel and BGM Informatique",
    "carlo": "Carlo Flora (carloflora.com); Italian translation by Silvia Petrin",
    "ivrvoice_ru": "Maxim Topal (ivrvoice.ru)",
}


def package(language: str) -> str:
    return f"asterisk-core-sounds-{language}-g722"


def fetch(languages, debs: Path) -> dict[str, Path]:
    """{language: .deb}: from `debs` where present, else downloaded there with apt-get."""
    debs.mkdir(parents=True, exist_ok=True)
    missing = [lang for lang in languages if not list(debs.glob(f"{package(lang)}_{VERSION}*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *(f"{package(lang)}={VERSION}-1" for lang in missing)],
                       cwd=debs, check=True)
    return {lang: sorted(debs.glob(f"{package(lang)}_{VERSION}*.deb"))[-1] for lang in languages}


def decode_g722(path: Path):
    """int16 samples (possibly none) and rate of a raw G.722 file, through PyAV's FFmpeg."""
    import av
    import numpy as np

    with av.open(str(path), format="g722") as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16), stream.rate


def build(output: Path, languages=tuple(VOICES), held_out: str = "allison", debs: Path | None = None) -> dict:
    """Writes the corpus; returns {speaker: seconds}."""
    import soundfile as sf

    try:
        import av  # noqa: F401
    except ImportError:
        raise UserError("decoding G.722 needs PyAV: pip install -e \".[corpus]\"") from None
    if held_out not in {VOICES[lang][0] for lang in languages}:
        raise UserError(f"--held_out {held_out!r}: expected one of the speakers "
                         f"{sorted({VOICES[lang][0] for lang in languages})}")
    output.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        packages = fetch(languages, debs or Path(tmp) / "debs")
        for lang, deb in packages.items():
            speaker, folder, _ = VOICES[lang]
            unpacked = Path(tmp) / lang
            subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True)
            (output / "copyright").mkdir(exist_ok=True)
            shutil.copy(unpacked / "usr/share/doc" / package(lang) / "copyright",
                        output / "copyright" / f"{package(lang)}.copyright")
            split = "held_out" if speaker == held_out else "train"
            source = unpacked / "usr/share/asterisk/sounds" / folder
            for g722 in sorted(source.rglob("*.g722")):
                relative = g722.relative_to(source)
                if relative.parts[0] == "silence":
                    continue
                samples, rate = decode_g722(g722)
                if not len(samples):
                    print(f"  left out {g722.name}: empty", flush=True)
                    continue
                target = output / split / speaker / lang / relative.with_suffix(".flac")
                target.parent.mkdir(parents=True, exist_ok=True)
                sf.write(target, samples, rate, subtype="PCM_16")
                seconds[speaker] = seconds.get(speaker, 0.0) + len(samples) / rate
            print(f"{package(lang)}: {speaker} -> {output / split / speaker / lang}", flush=True)
    write_attribution(output, languages, held_out, seconds)
    return seconds


def write_attribution(output: Path, languages, held_out: str, seconds: dict) -> None:
    lines = ["# Asterisk core sound prompts: a multi-speaker corpus", "",
             f"Built by `python -m wavegrad_tf.asterisk_corpus` from Debian's asterisk-core-sounds-*-g722 "
             f"{VERSION} packages; decoded from 16 kHz G.722 to 16-bit FLAC, otherwise unmodified. "
             f"`{held_out}` is in `held_out/`, never trained on.", "",
             "| language | speaker | recorded by | licence | package |", "|---|---|---|---|---|"]
    for lang in languages:
        speaker, _, licence = VOICES[lang]
        lines.append(f"| {lang} | {speaker} | {CREDITS[speaker]} | {licence} | {package(lang)} |")
    lines += ["", "Hours per speaker: " + ", ".join(f"{s} {t / 3600:.2f}" for s, t in sorted(seconds.items())), "",
              "Licence texts and the packages' own credits: `copyright/`. Material derived from the CC-BY-SA-3.0 "
              "recordings must stay under CC-BY-SA-3.0, with this attribution.", ""]
    (output / "ATTRIBUTION.md").write_text("\n".join(lines))
