"""Quality against sampler iterations, for several models: each evaluated (`wavegrad_tf.evaluate`) at each schedule,
with each consistency option (the network alone is `none`), on exact or TTS-like mels; one table of means.

    python benchmarks/iterations.py --model A=runs/r-A --model B=runs/r-B --schedule 2=search-2/schedule.yaml \
        --schedule 6=search-6/schedule.yaml --consistency none,mel --mel exact \
        --audio_dir corpora/asterisk/held_out/allison --max_files 16 --output runs/iterations-allison

Each cell's evaluation is kept in <output>/<model>-<schedule>-<consistency>-<mel>/ (results.json, wavs,
spectrograms) and reused when the command is run again, so a grid can be extended or resumed. Griffin-Lim is
scored once per mel kind, in its first cell (it depends on neither the model nor the schedule). The table goes to
<output>/table.md, a plot of PESQ and STOI against iterations to <output>/iterations.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from wavegrad_tf import hardware  # noqa: E402
from wavegrad_tf.evaluate_lib import evaluate  # noqa: E402

METRICS = ("log_mel_l1", "mr_stft", "pesq_wb", "stoi", "dnsmos_ovrl")


def pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, spec = value.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {value}: expected NAME=VALUE")
        out[name] = spec
    return out


def cell(output: Path, label: str, model: str, schedule: str, consistency: str, mel: str, args,
         griffin_lim: bool) -> dict:
    folder = output / label
    if not (folder / "results.json").is_file():
        evaluate(model, folder, args.audio_dir, max_files=args.max_files, metric_names=list(METRICS), plot_files=0,
                 mel=mel, schedule=schedule, consistency={"kind": consistency},
                 griffin_lim_iterations=32 if griffin_lim else 0)
    return json.loads((folder / "results.json").read_text())["mean"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=run folder or pretrained name")
    parser.add_argument("--schedule", action="append", required=True, help="NAME=schedule (preset, file or betas)")
    parser.add_argument("--consistency", default="none,mel")
    parser.add_argument("--mel", default="exact", help="exact, tts_like or both (comma-separated)")
    parser.add_argument("--audio_dir", default=None, help="Recordings to score; default: each run's held-out clips "
                        "(the same files for runs of one corpus and seed)")
    parser.add_argument("--max_files", type=int, default=16)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    hardware.configure_tensorflow()
    output = Path(args.output)
    models, schedules = pairs(args.model, "--model"), pairs(args.schedule, "--schedule")
    rows = []
    for mel in args.mel.split(","):
        for m, (name, model) in enumerate(models.items()):
            for s, (steps, schedule) in enumerate(schedules.items()):
                for c, consistency in enumerate(args.consistency.split(",")):
                    first = m == s == c == 0  # Griffin-Lim once per mel kind, in the grid's first cell
                    mean = cell(output, f"{name}-{steps}-{consistency}-{mel}", model, schedule, consistency, mel, args,
                                first)
                    rows.append((mel, name, steps, consistency, mean["wavegrad"]))
                    print(mel, name, steps, consistency, {k: round(mean["wavegrad"][k], 3) for k in METRICS},
                          flush=True)
                    if first:
                        rows.append((mel, "Griffin-Lim", "32 it.", "-", mean["griffin_lim"]))
    lines = [f"`python benchmarks/iterations.py {' '.join(sys.argv[1:])}` ({hardware.this_machine().describe()})", "",
             "| mel | model | iterations | consistency | " + " | ".join(METRICS) + " | RTF |",
             "|---|---|---|---|" + "---|" * (len(METRICS) + 1)]
    for mel, name, steps, consistency, scores in rows:
        lines.append(f"| {mel} | {name} | {steps} | {consistency} | "
                     + " | ".join(f"{scores[k]:.3f}" for k in METRICS) + f" | {scores['rtf']:.3f} |")
    (output / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, output / "iterations.png")


def plot(rows, path: Path, metrics=("pesq_wb", "stoi")) -> None:
    """One panel per metric and mel kind: each model's score against its iterations, a line per consistency
    option; Griffin-Lim as a grey line across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mels = sorted({r[0] for r in rows})
    fig, axes = plt.subplots(len(mels), len(metrics), figsize=(5.5 * len(metrics), 3.6 * len(mels)), squeeze=False)
    styles = {"none": "--", "mel": "-", "gla": ":", "gla_once": "-."}
    for i, mel in enumerate(mels):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            cells = [r for r in rows if r[0] == mel]
            for k, name in enumerate(dict.fromkeys(r[1] for r in cells if r[1] != "Griffin-Lim")):
                for consistency in dict.fromkeys(r[3] for r in cells if r[1] == name):
                    points = sorted((int(r[2]), r[4][metric]) for r in cells if r[1] == name and r[3] == consistency)
                    ax.plot(*zip(*points), styles.get(consistency, "-"), color=f"C{k}", marker="o",
                            label=f"{name}, {consistency}")
            for r in cells:
                if r[1] == "Griffin-Lim":
                    ax.axhline(r[4][metric], color="grey", lw=1, label="Griffin-Lim")
            ax.set_xlabel("iterations")
            ax.set_xticks(sorted({int(r[2]) for r in cells if r[1] != "Griffin-Lim"}))
            ax.set_ylabel(metric)
            ax.set_title(f"{mel} mels", fontsize=10)
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
