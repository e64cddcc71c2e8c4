"""Quality and time of a trained run against the number of iterations and against the schedule.

    python benchmarks/quality.py --model runs/demo --searched runs/demo/search-{steps}/schedule.yaml \
        --output docs/figures/quality

Runs wavegrad_tf.evaluate (the same clips, seed and metrics) once per schedule: the searched schedule for
every step count that has one (--searched is a pattern with {steps}), the presets, and ivanvovk's
published 6-step search; each evaluation is kept in <model>/quality/<schedule>/ and re-used. Prints
two Markdown tables (best-known schedule per iteration count; every schedule) and writes <output>.png
(each metric and the real-time factor against iterations) and <output>_schedules.png (bars per
schedule; Griffin-Lim dashed).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ITERATIONS = (1, 2, 3, 6, 12, 25, 50, 1000)
PUBLISHED = {"ivanvovk-6 (LJSpeech search)": [1e-6, 1.8929e-5, 1.1943e-4, 1.00475e-3, 1.10943e-2, 6e-2]}
COLUMNS = ("log_mel_l1", "mr_stft", "lsd_db", "mcd_db", "pesq_wb", "stoi", "dnsmos_ovrl", "dnsmos_bak",
           "dnsmos_p808", "rtf")


def candidate_schedules(pattern: str) -> dict:
    """{name: schedule spec}: searched files that exist, then the presets, then the published search."""
    from wavegrad_tf import schedules

    out = {}
    for steps in ITERATIONS:
        path = Path(pattern.format(steps=steps)) if pattern else None
        if path is not None and path.exists():
            out[f"searched-{steps}"] = str(path)
    out.update({name: name for name in schedules.PRESETS})
    out.update(PUBLISHED)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A training run folder or a pretrained name.")
    parser.add_argument("--searched", default="", help="schedule file pattern with {steps}")
    parser.add_argument("--output", default="docs/figures/quality")
    parser.add_argument("--max_files", type=int, default=None)
    args = parser.parse_args()
    from wavegrad_tf import evaluate_lib, schedules

    work = Path(args.model) / "quality"  # each schedule's evaluate output
    rows = {}
    for name, spec in candidate_schedules(args.searched).items():
        cached = work / name / "results.json"
        # Re-use finished evaluations: the 1000-step one takes minutes.
        results = (json.loads(cached.read_text()) if cached.exists() else
                   evaluate_lib.evaluate(args.model, work / name, schedule=spec, max_files=args.max_files))
        rows[name] = {"steps": len(schedules.get_schedule(spec)), "last": schedules.noise_levels(
            schedules.get_schedule(spec))[-1], **results["mean"]["wavegrad"]}
        baseline = results["mean"]["griffin_lim"]
        truth = results["mean"]["ground_truth"]
        print(f"{name}: done", flush=True)
    best = {}
    for name, row in rows.items():  # per step count, the lowest log-mel L1 among the schedules with it
        if row["steps"] in ITERATIONS and (row["steps"] not in best or row["log_mel_l1"] < rows[best[row["steps"]]]
                                           ["log_mel_l1"]):
            best[row["steps"]] = name

    def table(names, extra=()):
        head = "| schedule | steps | last noise level | " + " | ".join(COLUMNS) + " |"
        lines = [head, "|---|---|---|" + "---|" * len(COLUMNS)]
        for name in names:
            row = rows[name]
            lines.append(f"| {name} | {row['steps']} | {row['last']:.3f} | "
                         + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + " |")
        for label, values in extra:
            lines.append(f"| {label} | - | - | " + " | ".join("-" if values[c] is None else f"{values[c]:.3f}"
                                                          for c in COLUMNS) + " |")
        return "\n".join(lines)

    floor = [("Griffin-Lim, 32 iterations", baseline), ("recording", truth)]
    print(f"\nBest-known schedule per iteration count ({args.model}):\n")
    print(table([best[n] for n in sorted(best)], floor))
    print("\nEvery schedule:\n")
    print(table(sorted(rows, key=lambda n: (rows[n]["steps"], n)), floor))
    plot(rows, best, baseline, args.output + ".png")
    plot_schedules(rows, baseline, args.output + "_schedules.png")
    print(f"\nwrote {args.output}.png, {args.output}_schedules.png")


def plot(rows, best, baseline, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wavegrad_tf.metrics import METRICS

    fig, axes = plt.subplots(2, 5, figsize=(20, 7.5))
    steps = sorted(best)
    for ax, column in zip(axes.flat, COLUMNS):
        ax.plot(steps, [rows[best[n]][column] for n in steps], "o-", color="C0", label="best schedule per N")
        for name, row in rows.items():
            if name not in best.values():
                ax.plot(row["steps"], row[column], "x", color="C3", label="other schedules")
        if baseline.get(column) is not None:
            ax.axhline(baseline[column], color="gray", linestyle="--", label="Griffin-Lim")
        ax.set_xscale("log")
        if column == "rtf":  # 1 to 1000 steps: two decades of compute
            ax.set_yscale("log")
        ax.set_xticks(steps, [str(n) for n in steps], fontsize=7)
        ax.set_title(METRICS[column].label + f" ({METRICS[column].better} is better)" if column in METRICS
                     else "real-time factor (lower is better)", fontsize=9)
        ax.set_xlabel("iterations", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_schedules(rows, baseline, path, columns=("log_mel_l1", "mr_stft", "stoi", "dnsmos_ovrl", "rtf")):
    """One bar per schedule and metric, searched in blue and presets in red, Griffin-Lim dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wavegrad_tf.metrics import METRICS

    names = sorted(rows, key=lambda n: (rows[n]["steps"], n))
    colors = ["C0" if n.startswith("searched") else "C3" for n in names]
    fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 4.5), sharey=True)
    for ax, column in zip(axes, columns):
        ax.barh(range(len(names)), [rows[n][column] for n in names], color=colors)
        if baseline.get(column) is not None:
            ax.axvline(baseline[column], color="gray", linestyle="--")
        if column == "rtf":
            ax.set_xscale("log")
        ax.set_title(METRICS[column].label + f" ({METRICS[column].better} is better)" if column in METRICS
                     else "real-time factor (lower is better)", fontsize=9)
    axes[0].set_yticks(range(len(names)), names, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
