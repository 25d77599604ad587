/** Codes for a run of frames, codebook-major like the ONNX tensor [codebooks, frames]. */
export interface TokenBlock {
  numCodebooks: number;
  numFrames: number;
  /** length numCodebooks * numFrames; codes[k * numFrames + t] */
  codes: Int32Array;
}

/**
 * The opaque state a stateful streaming graph carries from one chunk of a stream to the next
 * (manifest `encoder.streaming` / `decoder.streaming`). A run reads `value` and replaces it with the
 * next state; decoder runs also leave `final`, the samples the stream would end with now.
 */
export interface StreamCarry {
  value: Float32Array;
  final?: Float32Array;
}
