"""Export a trained model as TFLite / LiteRT graphs (`export.tflite_lib`): the sampler unrolled, builtin ops only,
batch 1, static shapes, one signature per frame count.

    python -m export.tflite --model runs/demo --output exported/tflite
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    from wavegrad_tf.export.tflite_lib import SIGNATURE_FRAMES, VARIANTS

    cli.define_model_flag(kinds=("run",))
    flags.DEFINE_string("output", "exported/tflite", "Output folder: new, or an earlier export (files of the same "
                        "settings go beside it; other settings replace it whole).")
    flags.DEFINE_list("variants", None, f"Any of {', '.join(VARIANTS)}; default: all of them, but full_int8 only with "
                      "--consistency none (int8 cannot hold the projection).")
    cli.define_schedule_flag()
    flags.DEFINE_list("signature_frames", [str(n) for n in SIGNATURE_FRAMES], "Frame counts of the signatures: the "
                      "runner starts with the smallest (first audio sooner) and continues with the largest; each one "
                      "used keeps its own arena (memory). Default: one of 96, a phone's memory for WaveGrad Base.")
    flags.DEFINE_string("calibration_audio", None, "Folder of recordings for full_int8 calibration; default: the "
                        "run's training audio.")
    cli.define_consistency_flags()


def main(argv):
    del argv
    from pathlib import Path

    from wavegrad_tf.export.tflite_lib import export_tflite
    from wavegrad_tf import hardware

    run = cli.model_source(kinds=("run",)).run
    output = Path(FLAGS.output)
    before = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    written = export_tflite(run, FLAGS.output, FLAGS.variants, FLAGS.schedule, FLAGS.signature_frames,
                            FLAGS.calibration_audio, cli.consistency_flags(), progress=True)
    for name, path in written.items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    gone = [name for name in before if not (output / name).exists()]
    if gone:
        print(f"removed the earlier export of other settings: {', '.join(gone)}")
    choice = hardware.recommended_tflite_variant(hardware.this_machine())
    if choice.precision in written:
        print(f"for this CPU: {choice.precision}.tflite ({choice.reason}; docs/deployment.md says which file for "
              "which CPU)")
    else:
        print(f"for this CPU: {choice.precision}.tflite would be the one ({choice.reason}), not written here: add it "
              f"with --variants {choice.precision}")


if __name__ == "__main__":
    cli.main(define_flags, main)
