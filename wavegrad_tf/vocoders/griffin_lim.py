"""The floor a neural vocoder must beat: Griffin-Lim phase recovery from the same mel (librosa)."""

from __future__ import annotations

from typing import Optional

import librosa
import numpy as np

from wavegrad_tf import mel as mel_lib
from wavegrad_tf.config import AudioConfig
from wavegrad_tf.runtime import Metadata, PositionalNoise, Vocoder, check_mel


class GriffinLim(Vocoder):
    """Inverts the log-mel to a magnitude (non-negative least squares through the same Slaney filterbank),
    then recovers a phase with Griffin-Lim (with momentum)."""

    def __init__(self, audio_cfg: AudioConfig, iterations: int = 32):
        self.metadata, self.iterations = Metadata(audio=audio_cfg, betas=()), iterations
        self.name = f"Griffin-Lim ({iterations} iterations)"

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        audio_cfg = self.metadata.audio
        magnitude = librosa.feature.inverse.mel_to_stft(
            mel_lib.linear_mel(mel.T, audio_cfg, use_tf=False), sr=audio_cfg.sample_rate, n_fft=audio_cfg.n_fft, power=audio_cfg.power, fmin=audio_cfg.fmin,
            fmax=audio_cfg.fmax)
        audio = librosa.griffinlim(magnitude, n_iter=self.iterations, hop_length=audio_cfg.hop_length,
                                   win_length=audio_cfg.win_length, n_fft=audio_cfg.n_fft, window="hann", center=True,
                                   random_state=noise.seed)
        # (frames - 1) * hop samples: padded to frames * hop like the diffusion vocoders' output.
        return np.pad(audio, (0, len(mel) * audio_cfg.hop_length - len(audio))).astype(np.float32)

    def stream(self, mel, seed: Optional[int] = None):
        # One piece: the recovered phase is global, so chunks would not join.
        mel = mel if isinstance(mel, np.ndarray) else np.concatenate(list(mel))
        yield self.synthesize(check_mel(mel, self.metadata.audio), 0, PositionalNoise(seed))
