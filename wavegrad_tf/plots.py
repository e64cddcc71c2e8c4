"""Log-mel spectrogram figures: one row per clip, one column per system, on one colour scale."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display
import matplotlib.pyplot as plt  # noqa: E402

from wavegrad_tf.config import AudioConfig
from wavegrad_tf.mel import log_mel_spectrogram


def spectrogram_grid(rows: Sequence[dict[str, np.ndarray]], audio_cfg: AudioConfig, path: str | os.PathLike,
                     row_labels: Sequence[str] = ()) -> None:
    """rows[i] maps a column title (original, WaveGrad, ...) to audio; every panel shares one colour scale
    so a noise floor or a missing band shows as it is."""
    mels = [{title: log_mel_spectrogram(np.clip(audio, -1, 1), audio_cfg, use_tf=False).T for title, audio in row.items()}
            for row in rows]
    values = [m for row in mels for m in row.values()]
    vmin, vmax = min(m.min() for m in values), max(m.max() for m in values)
    columns = len(rows[0])
    fig, axes = plt.subplots(len(rows), columns, figsize=(4.5 * columns, 2.6 * len(rows)), squeeze=False)
    for r, row in enumerate(mels):
        for c, (title, m) in enumerate(row.items()):
            ax = axes[r, c]
            ax.imshow(m, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                      extent=[0, m.shape[1] * audio_cfg.hop_length / audio_cfg.sample_rate, 0, audio_cfg.n_mels])
            ax.set_title(title if r == 0 else "", fontsize=10)
            ax.set_ylabel(f"{row_labels[r]}\nmel bin" if r < len(row_labels) else "mel bin", fontsize=8)
            ax.set_xlabel("seconds" if r == len(rows) - 1 else "", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
