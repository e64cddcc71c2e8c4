"""Real-time factor of each sampler consistency option, against none, in one run on this machine.

    python benchmarks/consistency_speed.py [--model asterisk-16k] [--seconds 10] [--repeats 5]

The Keras vocoder in float32, its 6-iteration schedule, 10 s of a real mel (the bundled corpus, looped), the
default 400-frame chunks. Medians of --repeats calls after a warm-up; the ratio to `none` is what an option
costs on this CPU. Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from timing import median_seconds  # noqa: E402
from wavegrad_tf import audio, hardware, mel  # noqa: E402
from wavegrad_tf.runs import Run  # noqa: E402
from wavegrad_tf.config import Consistency  # noqa: E402
from wavegrad_tf.runtime import Metadata  # noqa: E402
from wavegrad_tf.vocoders.checkpoint import KerasVocoder  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="asterisk-16k", help="A run folder or a pretrained name.")
    parser.add_argument("--options", default=",".join(Consistency.KINDS))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    hardware.configure_tensorflow()
    run = Run.open(args.model)
    vocoders = {kind: KerasVocoder.from_run(run, Metadata.plan(run.config, precision="float32",
                                                               consistency={"kind": kind}))
                for kind in args.options.split(",")}
    cfg = next(iter(vocoders.values())).cfg
    speech = np.concatenate([audio.load_audio(p, cfg.audio.sample_rate) for p in audio.list_audio_files(audio.DEMO_CORPUS)])
    samples = int(args.seconds * cfg.audio.sample_rate)
    speech = np.tile(speech, -(-samples // len(speech)))[:samples]
    spectrogram = np.asarray(mel.log_mel_spectrogram(speech, cfg.audio, use_tf=False), np.float32)
    print(f"`python benchmarks/consistency_speed.py {' '.join(sys.argv[1:])}`: {hardware.this_machine().describe()}, "
          f"{hardware.usable_cpus()} usable CPUs, medians of {args.repeats} calls\n")
    print(f"| consistency | RTF ({args.seconds:g} s, 6 iterations, float32) | against none |")
    print("|---|---|---|")
    base = None
    for kind, vocoder in vocoders.items():
        rtf = median_seconds(lambda: vocoder.vocode(spectrogram, seed=0), args.repeats) / args.seconds
        base = base or rtf
        print(f"| {kind} | {rtf:.3f} | {rtf / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
