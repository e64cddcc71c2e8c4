// The page: load a model, take a recording or a .npy log-mel, vocode it chunk by chunk while playing each chunk,
// show both log-mels, the real-time factor and the time to first audio, and offer the wav.
// ?model=<url of a .tflite file with its wavegrad.json beside it> (default model/float16.tflite).

import {encodeWav, parseNpy} from './io.js';
import {logMelSpectrogram} from './mel.js';
import {loadRuntime, Vocoder} from './wavegrad.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = new URL(params.get('model') ?? 'model/float16.tflite', location.href);
const WASM_URL = new URL('./node_modules/@litertjs/core/wasm/', import.meta.url).href;

function status(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

async function loadModel() {
  const metadata = await (await fetch(new URL('wavegrad.json', modelUrl))).json();
  // The threaded build needs cross-origin isolation (SharedArrayBuffer): python -m wavegrad_tf.web sends the headers.
  const threads = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 4) : 0;
  await loadRuntime(WASM_URL, {threads: threads > 1});
  const vocoder = await Vocoder.load(modelUrl.href, metadata, {threads});
  const a = metadata.audio;
  $('model').textContent = `${modelUrl.pathname.split('/').pop()}: ${a.sample_rate} Hz, ${a.n_mels} mels, hop ` +
      `${a.hop_length}, ${metadata.betas.length} iterations, ${metadata.consistency.kind} consistency; ` +
      `${threads > 1 ? threads : 1} thread(s)`;
  return vocoder;
}

/** Mono float32 samples of an audio file at `rate`, decoded and resampled by the browser. */
async function decodeAudio(file, rate) {
  const encoded = await file.arrayBuffer();
  const decoded = await new AudioContext().decodeAudioData(encoded);
  const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * rate), rate);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);  // channels are mixed down to the one output channel
  source.start();
  return (await offline.startRendering()).getChannelData(0);
}

/** Draws a log-mel [frames * n_mels] with time across and frequency up, on the scale [low, high]. */
function drawMel(canvas, mel, frames, nMels, [low, high]) {
  canvas.width = frames;
  canvas.height = nMels;
  const context = canvas.getContext('2d'), image = context.createImageData(frames, nMels);
  for (let t = 0; t < frames; t++) {
    for (let m = 0; m < nMels; m++) {
      const v = Math.max(0, Math.min(1, (mel[t * nMels + m] - low) / (high - low)));
      const i = 4 * ((nMels - 1 - m) * frames + t);
      image.data.set([255 * Math.min(1, 2 * v), 255 * Math.max(0, 2 * v - 1), 255 * (1 - v) * v * 2, 255], i);
    }
  }
  context.putImageData(image, 0, 0);
}

/** Plays consecutive pieces gap-free as they arrive. */
class Player {
  constructor(rate) {
    this.context = new AudioContext({sampleRate: rate});
    this.next = 0;
  }

  play(samples) {
    const buffer = this.context.createBuffer(1, samples.length, this.context.sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    this.next = Math.max(this.next, this.context.currentTime);
    source.start(this.next);
    this.next += buffer.duration;
  }
}

/** Vocodes a log-mel, playing and timing it; returns the audio. */
async function vocode(vocoder, mel, frames, seed, {play = true} = {}) {
  const player = play ? new Player(vocoder.audio.sample_rate) : null;
  const pieces = [];
  const start = performance.now();
  let first = null;
  for await (const piece of vocoder.stream(mel, frames, seed)) {
    first ??= performance.now() - start;
    pieces.push(piece);
    player?.play(piece);
  }
  const seconds = (performance.now() - start) / 1000;
  const audio = new Float32Array(pieces.reduce((n, p) => n + p.length, 0));
  pieces.reduce((offset, p) => (audio.set(p, offset), offset + p.length), 0);
  return {audio, seconds, firstAudio: first / 1000};
}

async function main() {
  let vocoder;
  try {
    vocoder = await loadModel();
  } catch (error) {
    status(`could not load ${modelUrl.href}: ${error.message}`, true);
    throw error;
  }
  const a = vocoder.audio;
  // For scripts (tests, benchmarks): the loaded vocoder and the page's own steps, without the file inputs.
  window.wavegrad = {vocoder, logMelSpectrogram, vocode, parseNpy, ready: true};
  $('vocode').disabled = false;
  $('vocode').addEventListener('click', async () => {
    $('vocode').disabled = true;
    $('download').hidden = true;
    try {
      let mel, frames, samples = null;
      if ($('audio').files.length) {
        status('decoding and analysing the recording...');
        samples = await decodeAudio($('audio').files[0], a.sample_rate);
        ({data: mel, frames} = logMelSpectrogram(samples, a));
      } else if ($('mel').files.length) {
        const {data, shape} = parseNpy(await $('mel').files[0].arrayBuffer());
        if (shape.length !== 2 || shape[1] !== a.n_mels) {
          throw new Error(`mel: expected [frames, ${a.n_mels}], got [${shape}]`);
        }
        [mel, frames] = [data, shape[0]];
      } else {
        throw new Error('choose a recording or a .npy log-mel first');
      }
      status(`vocoding ${frames} frames...`);
      const seed = Number($('seed').value);
      const result = await vocode(vocoder, mel, frames, seed);
      // A recording's own length, not its last frame's end (as wavegrad_tf.infer trims).
      const audio = samples ? result.audio.subarray(0, samples.length) : result.audio;
      const duration = audio.length / a.sample_rate;
      $('rtf').textContent = (result.seconds / duration).toFixed(3);
      $('ttfa').textContent = `${result.firstAudio.toFixed(2)} s`;
      $('duration').textContent = `${duration.toFixed(2)} s at ${a.sample_rate} Hz`;
      const output = logMelSpectrogram(audio, a);
      const range = mel.reduce(([low, high], v) => [Math.min(low, v), Math.max(high, v)], [Infinity, -Infinity]);
      drawMel($('mel-original'), mel, frames, a.n_mels, range);
      drawMel($('mel-vocoded'), output.data, output.frames, a.n_mels, range);
      $('download').href = URL.createObjectURL(encodeWav(audio, a.sample_rate));
      $('download').hidden = false;
      status(`done: ${duration.toFixed(2)} s of audio in ${result.seconds.toFixed(2)} s`);
    } catch (error) {
      status(`error: ${error.message}`, true);
    } finally {
      $('vocode').disabled = false;
    }
  });
  status('ready');
}

main();
