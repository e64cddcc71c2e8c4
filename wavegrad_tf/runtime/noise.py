"""Sampling noise keyed by position (NumPy only: runtimes without TensorFlow use it, and `web/noise.js` is its
JavaScript twin, so a browser draws the same noise for the same seed)."""

from __future__ import annotations

import hashlib
from typing import Optional, Sequence

import numpy as np

from wavegrad_tf.errors import UserError

# Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): multipliers and the
# Weyl constants that bump the key between rounds.
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK = np.uint64(0xFFFFFFFF)
ROUNDS = 10
# Seeds a browser can hold exactly (a JavaScript number is a double).
MAX_SEED = 2**53 - 1


def philox4x32(counter: np.ndarray, key: tuple[int, int], rounds: int = ROUNDS) -> np.ndarray:
    """Philox4x32: counters [..., 4] (uint32) -> 4 random uint32 each, under a 2-word key."""
    c = [np.asarray(counter[..., i], np.uint64) for i in range(4)]
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        p0, p1 = _M0 * c[0], _M1 * c[2]  # 32 x 32 -> 64 bits: exact in uint64
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & _MASK,
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1), p0 & _MASK]
    return np.stack(c, axis=-1).astype(np.uint32)


class PositionalNoise:
    """Gaussian noise keyed by (seed, step, batch item, absolute sample position).

    Any window of a long signal gets the same values whether it is vocoded whole or in overlapping chunks, so
    chunked and whole synthesis agree away from the seams. Samples 4j..4j+3 come from one Philox4x32-10 block,
    counter (j, step, item, 0) and key (seed mod 2^32, seed div 2^32), by two Box-Muller transforms of its four
    words: 32-bit uniforms (w + 0.5) / 2^32, computed in float64 and rounded to float32 (as `web/noise.js` does).
    """

    def __init__(self, seed: Optional[int] = None):
        # `fixed`: the caller asked for this seed (reproducible output), rather than any noise.
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= seed <= MAX_SEED):
            raise UserError(f"--seed {seed}: expected a whole number from 0 to {MAX_SEED}")
        self.fixed = seed is not None
        self.seed = int(np.random.SeedSequence().entropy % (MAX_SEED + 1)) if seed is None else int(seed)

    def __call__(self, step: int, batch: int, start: int, length: int) -> np.ndarray:
        first, last = start // 4, (start + length + 3) // 4
        blocks = np.arange(first, last, dtype=np.uint64)
        counter = np.zeros((batch, len(blocks), 4), np.uint64)
        counter[..., 0] = blocks & _MASK
        counter[..., 1] = step
        counter[..., 2] = np.arange(batch, dtype=np.uint64)[:, None]
        words = philox4x32(counter, (self.seed & 0xFFFFFFFF, self.seed >> 32)).astype(np.float64)
        uniform = (words + 0.5) * 2.0**-32
        radius = np.sqrt(-2.0 * np.log(uniform[..., 0::2]))
        angle = 2.0 * np.pi * uniform[..., 1::2]
        # [batch, blocks, 2 pairs, (cos, sin)] -> consecutive samples
        values = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1).reshape(batch, -1)
        offset = start - 4 * first
        return values[:, offset:offset + length].astype(np.float32)

    def per_step(self, steps: int, start: int, length: int) -> np.ndarray:
        """[steps, 1, length]: item k - 1 is the noise of step k, the layout of exported graphs' noise input."""
        return np.stack([self(step, 1, start, length) for step in range(1, steps + 1)])


def keyed_seed(seed: int, key: str) -> int:
    """The seed of one item of a corpus (`key`: its relative path): `seed` and the key hashed (SHA-256) into
    0..MAX_SEED, so an item's noise depends on what it is, not on where it comes in a job or a batch."""
    PositionalNoise(seed)  # refused like any seed
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & MAX_SEED


class ItemNoise:
    """The noise of a batch whose item i draws from noises[i] as a batch of one (item 0): each item's noise is the
    noise it gets vocoded alone, whatever its batch and its place in it."""

    def __init__(self, noises: Sequence[PositionalNoise]):
        self.noises = list(noises)

    def __call__(self, step: int, batch: int, start: int, length: int) -> np.ndarray:
        assert batch == len(self.noises), (batch, len(self.noises))
        return np.concatenate([noise(step, 1, start, length) for noise in self.noises])

    def per_step(self, steps: int, start: int, length: int) -> np.ndarray:
        """[steps, batch, length], the layout of exported graphs' noise input."""
        return np.concatenate([noise.per_step(steps, start, length) for noise in self.noises], axis=1)
