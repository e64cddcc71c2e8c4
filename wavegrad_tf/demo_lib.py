"""The quick start (`python -m wavegrad_tf.demo` is the command line): fine-tune the pretrained model on the
bundled speech, then vocode the clips it held out, with the pretrained model before fine-tuning and the fine-tuned
run after, and score them (log-mel L1 to the originals). The bundled corpus is a speaker the pretrained model
never heard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PRETRAINED = "asterisk-16k"
# 150 steps hold the quick start to 5 minutes on 2 cores of a CPU without bfloat16, where a step takes 1.3 s.
FINE_TUNE_STEPS = 150
FROM_SCRATCH_STEPS = 1500
# Fine-tuning continues at the rate the pretrained run had decayed to (3e-4 made the held-out clips worse:
# log-mel L1 0.827 -> 1.038, against 0.847 at 5e-5), constant, without warm-up.
# The pretrained model trained through its sampler (InferGrad, docs/training.md), at a third of the steps per second:
# the quick start shows the workflow with the plain loss, so it stays quick.
FINE_TUNE = ["train.learning_rate=5e-5", "train.warmup_steps=0", "train.lr_half_life=0", "train.validate_every=100000",
             "train.infer_loss_weight=0"]


def quick_start(model_dir: str | Path, steps: int | None = None, from_scratch: bool = False,
                pretrained: str = PRETRAINED, seed: int = 0) -> dict:
    """Trains (or fine-tunes) into `model_dir`, vocodes its held-out clips, writes demo_original.wav,
    demo_pretrained.wav, demo_vocoded.wav (the first clip) and demo_spectrograms.png (every clip); returns
    {system: {"as shipped" | "network alone": mean log-mel L1}}."""
    from wavegrad_tf import mel, train_lib
    from wavegrad_tf.audio import load_audio, save_wav
    from wavegrad_tf.plots import spectrogram_grid
    from wavegrad_tf.runs import Run
    from wavegrad_tf.vocoders import load_vocoder

    model_dir = Path(model_dir)
    steps = steps if steps is not None else (FROM_SCRATCH_STEPS if from_scratch else FINE_TUNE_STEPS)
    if from_scratch:
        train_lib.run("demo", str(model_dir), steps)
    else:
        train_lib.run(None, str(model_dir), steps, overrides=FINE_TUNE, init_from=pretrained)
    held_out = Run(model_dir).held_out_files()
    # (title, the model, the wav written); each scored as shipped and with the network alone: the default
    # consistency projection brings any output's mel near the original's, so only the second tells models apart.
    systems = [("WaveGrad, fine-tuned, 6 iterations", model_dir, "demo_vocoded.wav")]
    if not from_scratch:
        systems.append(("pretrained, before fine-tuning", pretrained, "demo_pretrained.wav"))
    audio_cfg = Run(model_dir).config.audio
    # Every held-out clip is scored (one clip's distance moves with the noise draw); the first one is written.
    rows = [{"original (held out)": load_audio(path, audio_cfg.sample_rate)} for path in held_out]
    save_wav(model_dir / "demo_original.wav", rows[0]["original (held out)"], audio_cfg.sample_rate)
    print(f"{len(held_out)} held-out clips; the first, {Path(held_out[0]).name}, is written as demo_*.wav")
    scores = {}
    for title, model, name in reversed(systems):
        shipped, alone = load_vocoder(model), load_vocoder(model, consistency={"kind": "none"})
        distances = {"as shipped": [], "network alone": []}
        for row in rows:
            audio = row["original (held out)"]
            features = mel.log_mel_spectrogram(audio, audio_cfg, use_tf=False)
            row[title] = shipped.vocode(features, seed)[:len(audio)]
            distances["as shipped"].append(mel.log_mel_l1(row[title], audio, audio_cfg, use_tf=False))
            distances["network alone"].append(mel.log_mel_l1(alone.vocode(features, seed), audio, audio_cfg,
                                                             use_tf=False))
        save_wav(model_dir / name, rows[0][title], audio_cfg.sample_rate)
        scores[title] = {k: float(np.mean(v)) for k, v in distances.items()}
        print(f"{title}: log-mel L1 to the originals {scores[title]['as shipped']:.3f} as shipped (the mel "
              f"projection), {scores[title]['network alone']:.3f} from the network alone (per clip: "
              f"{', '.join(f'{d:.3f}' for d in distances['network alone'])}); {name}")
    spectrogram_grid(rows, audio_cfg, model_dir / "demo_spectrograms.png", [Path(p).stem for p in held_out])
    print(f"wrote {model_dir}/demo_original.wav, {', '.join(name for _, _, name in systems)}, "
          "demo_spectrograms.png")
    return scores
