// Sampling noise keyed by position: the JavaScript twin of wavegrad_tf/runtime/noise.py (PositionalNoise), so
// the page draws, for a seed, the noise the Python runtimes draw. Philox4x32-10 with counter (sample div 4,
// step, item, 0) and key (seed mod 2^32, seed div 2^32); each block's four words make two Box-Muller pairs of
// uniforms (w + 0.5) / 2^32, computed in float64 and rounded to float32.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TO_UNIT = 2 ** -32;
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

// The high 32 bits of a * b for uint32 a, b (the low half is Math.imul's), from 16-bit parts: exact in doubles.
function mulhi(a, b) {
  const aHi = a >>> 16, aLo = a & 0xffff, bHi = b >>> 16, bLo = b & 0xffff;
  const mid = aHi * bLo + ((aLo * bLo) >>> 16);
  return (aHi * bHi + Math.floor(mid / 0x10000) + Math.floor(((mid & 0xffff) + aLo * bHi) / 0x10000)) >>> 0;
}

/** Philox4x32-10 of counter [c0, c1, c2, c3] under key [k0, k1], written into `out` (four uint32). */
export function philox4x32(counter, key, out = new Uint32Array(4), rounds = 10) {
  let c0 = counter[0] >>> 0, c1 = counter[1] >>> 0, c2 = counter[2] >>> 0, c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < rounds; r++) {
    if (r) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

export class PositionalNoise {
  constructor(seed) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`seed ${seed}: expected a whole number from 0 to ${MAX_SEED}`);
    }
    this.key = [seed % 0x100000000, Math.floor(seed / 0x100000000)];
  }

  /** Float32Array of `length` samples of batch item `item` at diffusion step `step`, from absolute sample `start`. */
  draw(step, item, start, length) {
    const out = new Float32Array(length), words = new Uint32Array(4), counter = [0, step, item, 0];
    for (let block = Math.floor(start / 4); 4 * block < start + length; block++) {
      counter[0] = block % 0x100000000;
      philox4x32(counter, this.key, words);
      for (let pair = 0; pair < 2; pair++) {
        const radius = Math.sqrt(-2 * Math.log((words[2 * pair] + 0.5) * TO_UNIT));
        const angle = 2 * Math.PI * ((words[2 * pair + 1] + 0.5) * TO_UNIT);
        const i = 4 * block + 2 * pair - start;
        if (i >= 0 && i < length) out[i] = radius * Math.cos(angle);
        if (i + 1 >= 0 && i + 1 < length) out[i + 1] = radius * Math.sin(angle);
      }
    }
    return out;
  }

  /** [steps, 1, length], flattened: block k - 1 is the noise of step k (the exported graphs' noise input). */
  perStep(steps, start, length) {
    const out = new Float32Array(steps * length);
    for (let step = 1; step <= steps; step++) out.set(this.draw(step, 0, start, length), (step - 1) * length);
    return out;
  }
}
