// The model's log-mel front end in JavaScript: the twin of wavegrad_tf/mel.py's NumPy path. Frame t is centred
// on sample t * hop (reflect padding of win_length / 2), a periodic Hann window of win_length zero-padded to
// n_fft, |FFT| to the power `power`, the Slaney filterbank (librosa's default: Slaney mel scale, each triangle
// of unit area), then (ln(max(mel, log_floor)) - mel_offset) / mel_scale. `audio` is wavegrad.json's `audio`.

const LINEAR_HZ_PER_MEL = 200 / 3;
const BREAK_HZ = 1000;
const LOG_STEP = Math.log(6.4) / 27;
const BREAK_MEL = BREAK_HZ / LINEAR_HZ_PER_MEL;

export function hzToMel(hz) {
  return hz < BREAK_HZ ? hz / LINEAR_HZ_PER_MEL : BREAK_MEL + Math.log(hz / BREAK_HZ) / LOG_STEP;
}

export function melToHz(mel) {
  return mel < BREAK_MEL ? mel * LINEAR_HZ_PER_MEL : BREAK_HZ * Math.exp(LOG_STEP * (mel - BREAK_MEL));
}

/** Each mel band as {first, weights}: its nonzero filterbank entries from bin `first` on (mel.mel_filterbank). */
export function melBands(audio) {
  const bins = audio.n_fft / 2 + 1;
  const low = hzToMel(audio.fmin), high = hzToMel(audio.fmax);
  const edges = Array.from({length: audio.n_mels + 2}, (_, i) => melToHz(low + (high - low) * i / (audio.n_mels + 1)));
  return Array.from({length: audio.n_mels}, (_, m) => {
    const weights = [];
    let first = -1;
    for (let k = 0; k < bins; k++) {
      const hz = (audio.sample_rate / 2) * k / (bins - 1);
      const rising = (hz - edges[m]) / (edges[m + 1] - edges[m]);
      const falling = (edges[m + 2] - hz) / (edges[m + 2] - edges[m + 1]);
      const weight = Math.fround(Math.max(0, Math.min(rising, falling)) * (2 / (edges[m + 2] - edges[m])));
      if (weight > 0) {
        if (first < 0) first = k;
        weights[k - first] = weight;
      } else if (first >= 0) {
        break;
      }
    }
    return {first: Math.max(first, 0), weights: Float64Array.from(weights, (w) => w ?? 0)};
  });
}

export function hann(length) {
  return Float32Array.from({length}, (_, n) => 0.5 - 0.5 * Math.cos(2 * Math.PI * n / length));
}

/** In-place radix-2 FFT of (re, im); the length is a power of two. */
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const step = -2 * Math.PI / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < size / 2; k++) {
        const wr = Math.cos(step * k), wi = Math.sin(step * k);
        const a = start + k, b = a + size / 2;
        const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
}

/** |X_k|, k = 0 .. n / 2, of a real frame zero-padded to n (a power of two; any other n by a direct DFT). */
function magnitudes(frame, n) {
  const bins = n / 2 + 1, out = new Float64Array(bins);
  if ((n & (n - 1)) === 0) {
    const re = new Float64Array(n), im = new Float64Array(n);
    re.set(frame);
    fft(re, im);
    for (let k = 0; k < bins; k++) out[k] = Math.hypot(re[k], im[k]);
    return out;
  }
  for (let k = 0; k < bins; k++) {
    let re = 0, im = 0;
    for (let t = 0; t < frame.length; t++) {
      re += frame[t] * Math.cos(2 * Math.PI * k * t / n);
      im -= frame[t] * Math.sin(2 * Math.PI * k * t / n);
    }
    out[k] = Math.hypot(re, im);
  }
  return out;
}

function reflectPad(samples, pad) {
  const out = new Float32Array(samples.length + 2 * pad);
  out.set(samples, pad);
  for (let i = 1; i <= pad; i++) {
    out[pad - i] = samples[i];
    out[pad + samples.length - 1 + i] = samples[samples.length - 1 - i];
  }
  return out;
}

/** Log-mel features of mono audio (Float32Array) at the model's rate: {data: Float32Array [frames * n_mels], frames}. */
export function logMelSpectrogram(samples, audio) {
  const pad = audio.win_length / 2;
  if (samples.length <= pad) throw new Error(`audio: expected more than ${pad} samples at ${audio.sample_rate} Hz`);
  const padded = reflectPad(samples, pad);
  const frames = 1 + Math.floor((padded.length - audio.win_length) / audio.hop_length);
  const window = hann(audio.win_length), bands = melBands(audio);
  const data = new Float32Array(frames * audio.n_mels), frame = new Float32Array(audio.win_length);
  for (let t = 0; t < frames; t++) {
    for (let i = 0; i < audio.win_length; i++) frame[i] = padded[t * audio.hop_length + i] * window[i];
    const spectrum = magnitudes(frame, audio.n_fft);
    if (audio.power !== 1) for (let k = 0; k < spectrum.length; k++) spectrum[k] **= audio.power;
    bands.forEach(({first, weights}, m) => {
      let sum = 0;
      for (let j = 0; j < weights.length; j++) sum += spectrum[first + j] * weights[j];
      data[t * audio.n_mels + m] = (Math.log(Math.max(sum, audio.log_floor)) - audio.mel_offset) / audio.mel_scale;
    });
  }
  return {data, frames};
}
