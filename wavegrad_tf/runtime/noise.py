"""Sampling noise keyed by position (NumPy only: runtimes without TensorFlow use it)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from wavegrad_tf.errors import UserError


class PositionalNoise:
    """Gaussian noise keyed by (seed, step, batch item, absolute sample position).

    Any window of a long signal gets the same values whether it is vocoded whole or in
    overlapping chunks, so chunked and whole synthesis agree away from the seams.
    """

    BLOCK = 8192

    def __init__(self, seed: Optional[int] = None):
        # `fixed`: the caller asked for this seed (reproducible output), rather than any noise.
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise UserError(f"--seed {seed}: expected a whole number >= 0")
        self.fixed = seed is not None
        self.seed = int(np.random.SeedSequence().entropy % (2**63)) if seed is None else int(seed)

    def __call__(self, step: int, batch: int, start: int, length: int) -> np.ndarray:
        first, last = start // self.BLOCK, (start + length - 1) // self.BLOCK
        out = np.empty((batch, (last - first + 1) * self.BLOCK), np.float32)
        for b in range(batch):
            for k, block in enumerate(range(first, last + 1)):
                rng = np.random.default_rng([self.seed, step, b, block])
                out[b, k * self.BLOCK:(k + 1) * self.BLOCK] = rng.standard_normal(self.BLOCK, np.float32)
        offset = start - first * self.BLOCK
        return out[:, offset:offset + length]

    def per_step(self, steps: int, start: int, length: int) -> np.ndarray:
        """[steps, 1, length]: item k - 1 is the noise of step k, the layout of exported graphs' noise input."""
        return np.stack([self(step, 1, start, length) for step in range(1, steps + 1)])
