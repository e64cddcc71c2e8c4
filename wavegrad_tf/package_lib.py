"""Package a training run as a pretrained model of this package (`python -m wavegrad_tf.package` is its command
line): its config, with the searched schedule as the inference schedule, and its averaged weights alone, in
float16 by default, with the error that storage costs (the relative L2 distance of their 6-step audio to the
float32 weights' on the same clip, seed and noise). The model card (README.md beside them) is written by hand
from `evaluate`'s tables."""

from __future__ import annotations

import dataclasses

import numpy as np

from wavegrad_tf import mel, pretrained, runs, schedules
from wavegrad_tf.audio import DEMO_CORPUS, list_audio_files, load_audio


def package(run: runs.Run, name: str, schedule=None, dtype: str = "float16") -> dict:
    from wavegrad_tf.model import load_network
    from wavegrad_tf.vocoders import load_vocoder
    from wavegrad_tf.vocoders.checkpoint import KerasVocoder

    cfg = run.config
    if schedule is not None:
        betas = [float(b) for b in schedules.get_schedule(schedule)]
        cfg = dataclasses.replace(cfg, name=name, diffusion=dataclasses.replace(cfg.diffusion,
                                                                                inference_schedule=betas))
    package = runs.Run(pretrained.DIR / name, name)
    network = load_network(run)  # loaded and checked before the package's folder is made
    package.save_package(network, cfg, dtype)
    # The stored weights against the run's float32 average, on a bundled clip, the same noise.
    clip = load_audio(list_audio_files(DEMO_CORPUS)[0], cfg.audio.sample_rate)
    features = mel.log_mel_spectrogram(clip, cfg.audio, use_tf=False)
    reference = KerasVocoder(cfg, network).vocode(features, seed=0)
    stored = load_vocoder(name).vocode(features, seed=0)
    error = float(np.linalg.norm(stored - reference) / np.linalg.norm(reference))
    return {"folder": str(package.folder), "weights_mb": package.weights_bytes / 1e6, "relative_error": error}
