// Files in and out of the page: a .npy log-mel from a TTS model in, a 16-bit PCM wav out.

/** {data: Float32Array, shape} of a little-endian float32 or float64 .npy file (C order), from an ArrayBuffer. */
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new Error('not a .npy file (no \\x93NUMPY magic)');
  const view = new DataView(buffer);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const order = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').filter((s) => s.trim()).map(Number);
  if (order !== 'False') throw new Error('.npy: expected C order (fortran_order False)');
  const count = shape.reduce((a, b) => a * b, 1), offset = start + headerLength;
  let data;
  if (descr === '<f4') data = new Float32Array(buffer.slice(offset, offset + 4 * count));
  else if (descr === '<f8') data = Float32Array.from(new Float64Array(buffer.slice(offset, offset + 8 * count)));
  else throw new Error(`.npy: expected float32 or float64 values, got dtype ${descr}`);
  return {data, shape};
}

/** A mono 16-bit PCM wav of samples in [-1, 1] (clipped, as wavegrad_tf.infer writes). */
export function encodeWav(samples, sampleRate) {
  const buffer = new ArrayBuffer(44 + 2 * samples.length), view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + 2 * samples.length, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);  // PCM
  view.setUint16(22, 1, true);  // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, 2 * sampleRate, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, 'data');
  view.setUint32(40, 2 * samples.length, true);
  samples.forEach((x, i) => view.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, x)) * 32767), true));
  return new Blob([buffer], {type: 'audio/wav'});
}
