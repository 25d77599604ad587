/**
 * Spectral similarity of two signals at one rate: correlation of their log band energies
 * (20 ms frames, 10 ms hop, 32 linear bands up to Nyquist). Codecs with a phase-free (iSTFT or
 * vocoder) head do not preserve the waveform, so waveform correlation says little; the spectrum
 * over time is what a listener hears.
 */
export function logBandFrames(x: Float32Array, rate: number, bands = 32): Float64Array {
  const n = 512;
  const hop = Math.round(rate / 100);
  const frames = Math.max(0, Math.floor((x.length - n) / hop) + 1);
  const out = new Float64Array(frames * bands);
  const cos = new Float64Array(n * (n / 2));
  const sin = new Float64Array(n * (n / 2));
  for (let k = 0; k < n / 2; k++) {
    for (let i = 0; i < n; i++) {
      cos[k * n + i] = Math.cos((2 * Math.PI * k * i) / n);
      sin[k * n + i] = Math.sin((2 * Math.PI * k * i) / n);
    }
  }
  const w = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const seg = new Float64Array(n);
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < n; i++) seg[i] = x[f * hop + i] * w[i];
    for (let k = 0; k < n / 2; k++) {
      let re = 0;
      let im = 0;
      for (let i = 0; i < n; i++) {
        re += seg[i] * cos[k * n + i];
        im -= seg[i] * sin[k * n + i];
      }
      out[f * bands + Math.floor((k * bands) / (n / 2))] += re * re + im * im;
    }
    for (let b = 0; b < bands; b++) out[f * bands + b] = Math.log10(out[f * bands + b] + 1e-6);
  }
  return out;
}

export function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** Spectral correlation of `a` and `b` (same rate) over their common length. */
export function spectralCorrelation(a: Float32Array, b: Float32Array, rate: number): number {
  const n = Math.min(a.length, b.length);
  return correlation(logBandFrames(a.subarray(0, n), rate), logBandFrames(b.subarray(0, n), rate));
}
