"""Rebuilds the bundled demo corpus from Debian's asterisk-core-sounds-en-g722 (not run at install time).

    apt-get download asterisk-core-sounds-en-g722 && dpkg -x asterisk-core-sounds-en-g722_*.deb deb/
    python wavegrad_tf/demo_data/make_corpus.py deb/usr/share/asterisk/sounds/en_US_f_Allison

Needs ffmpeg (G.722 decoder). Keeps prompts of 1.5 to 12 s, in a fixed pseudo-random order, as
16 kHz 16-bit FLAC until a size budget is reached.
"""

import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import soundfile as sf

BUDGET_BYTES = 4_600_000
MIN_SECONDS, MAX_SECONDS = 1.5, 12.0
OUT = Path(__file__).resolve().parent / "speech"


def main(src: str) -> None:
    OUT.mkdir(exist_ok=True)
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for g722 in sorted(Path(src).glob("*.g722")):
            wav = Path(tmp) / f"{g722.stem}.wav"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "g722", "-i", str(g722), "-ar", "16000",
                            "-ac", "1", str(wav)], check=True)
            audio, sr = sf.read(wav, dtype="int16")
            if MIN_SECONDS <= len(audio) / sr <= MAX_SECONDS:
                clips.append((zlib.crc32(g722.stem.encode()), g722.stem, audio, sr))
        used = 0
        for _, stem, audio, sr in sorted(clips):
            path = OUT / f"{stem}.flac"
            sf.write(path, audio, sr, subtype="PCM_16")
            if used + path.stat().st_size > BUDGET_BYTES:
                path.unlink()
                continue
            used += path.stat().st_size
    print(f"{len(list(OUT.glob('*.flac')))} clips, {used / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
