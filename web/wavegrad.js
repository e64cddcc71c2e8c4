// WaveGrad in the browser: a .tflite export (export/tflite.py) run by LiteRT.js, vocoding a log-mel in chunks
// exactly as wavegrad_tf/runtime/vocoder.py and wavegrad_tf/vocoders/litert.py do in Python: the first chunk
// at the smallest signature (first audio sooner), the others at the largest, a short last chunk padded with
// silence and trimmed, overlaps of 32 frames crossfaded over their middle half, and the noise keyed by
// absolute sample position (noise.js), so the same seed gives the same audio as the Python runner.

import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

import {PositionalNoise} from './noise.js';

export const OVERLAP_FRAMES = 32;  // wavegrad_tf.runtime.Vocoder.overlap_frames

/** 0 over the first quarter, linear to 1 over the middle half, 1 over the last quarter (runtime.fade_in). */
export function fadeIn(length) {
  return Float32Array.from({length}, (_, i) => Math.min(1, Math.max(0, (i + 0.5 - length / 4) / (length / 2))));
}

/** The feature value of digital silence (mel.silence). */
export function silence(audio) {
  return Math.fround((Math.log(audio.log_floor) - audio.mel_offset) / audio.mel_scale);
}

let runtime = null;

/** Loads LiteRT.js once from `wasmUrl` (the folder of @litertjs/core's wasm files). */
export async function loadRuntime(wasmUrl, options = {}) {
  runtime ??= loadLiteRt(wasmUrl, options);
  return runtime;
}

export class Vocoder {
  /** `modelUrl`: the .tflite file; `metadata`: its wavegrad.json, parsed. */
  static async load(modelUrl, metadata, {threads} = {}) {
    const model = await loadAndCompile(modelUrl, {accelerator: 'wasm', ...(threads ? {cpuOptions: {numThreads: threads}} : {})});
    return new Vocoder(model, metadata);
  }

  constructor(model, metadata) {
    this.model = model;
    this.metadata = metadata;
    this.audio = metadata.audio;
    this.steps = metadata.betas.length;
    this.sizes = [...metadata.signature_frames].sort((a, b) => a - b);
    const names = Object.keys(model.signatures);
    for (const size of this.sizes) {
      if (!names.includes(`frames_${size}`)) {
        throw new Error(`wavegrad.json lists chunk sizes ${this.sizes}, but the model has signatures ${names}: ` +
                        'the two come from different exports');
      }
    }
    this.firstChunkFrames = this.sizes[0];
    this.chunkFrames = this.sizes[this.sizes.length - 1];
  }

  /** Audio [frames * hop] of one chunk (Float32Array [frames * n_mels]) starting at sample `start`. */
  async synthesize(mel, frames, start, noise) {
    const {n_mels: nMels, hop_length: hop} = this.audio;
    const size = this.sizes.find((n) => n >= frames) ?? this.chunkFrames;
    if (frames > size) throw new Error(`chunk of ${frames} frames: the largest signature holds ${size}`);
    const padded = new Float32Array(size * nMels).fill(silence(this.audio));
    padded.set(mel.subarray(0, frames * nMels));
    const inputs = {
      mel: new Tensor(padded, [1, size, nMels]),
      noise: new Tensor(noise.perStep(this.steps, start, size * hop), [this.steps, 1, size * hop]),
    };
    try {
      const outputs = await this.model.signatures[`frames_${size}`].run(inputs);
      const tensor = Object.values(outputs)[0];
      const audio = tensor.toTypedArray().slice(0, frames * hop);
      tensor.delete();
      return audio;
    } finally {
      Object.values(inputs).forEach((t) => t.delete());
    }
  }

  /**
   * Consecutive pieces of the audio of a log-mel (Float32Array [frames * n_mels]), each as soon as no later chunk
   * can change it (runtime.Vocoder.stream).
   */
  async *stream(mel, frames, seed) {
    const {n_mels: nMels, hop_length: hop} = this.audio;
    const noise = new PositionalNoise(seed);
    const fade = fadeIn(OVERLAP_FRAMES * hop);
    let begin = 0, size = this.firstChunkFrames, tail = null;
    for (;;) {
      const end = Math.min(begin + size, frames);
      const audio = await this.synthesize(mel.subarray(begin * nMels, end * nMels), end - begin, begin * hop, noise);
      for (let i = 0; i < audio.length; i++) {
        if (!Number.isFinite(audio[i])) throw new Error(`non-finite audio for frames ${begin} to ${end}`);
      }
      if (tail) for (let i = 0; i < tail.length; i++) audio[i] = audio[i] * fade[i] + tail[i];
      if (end === frames) {
        yield audio;
        return;
      }
      const cut = (end - begin - OVERLAP_FRAMES) * hop;  // the next chunk starts `overlap` frames before this end
      tail = audio.slice(cut).map((x, i) => x * (1 - fade[i]));
      yield audio.slice(0, cut);
      begin = end - OVERLAP_FRAMES;
      size = this.chunkFrames;
    }
  }

  async vocode(mel, frames, seed) {
    const pieces = [];
    for await (const piece of this.stream(mel, frames, seed)) pieces.push(piece);
    const out = new Float32Array(pieces.reduce((n, p) => n + p.length, 0));
    pieces.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
    return out;
  }
}
