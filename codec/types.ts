/** Codes for a run of frames, codebook-major like the ONNX tensor [codebooks, frames]. */
export interface TokenBlock {
  numCodebooks: number;
  numFrames: number;
  /** length numCodebooks * numFrames; codes[k * numFrames + t] */
  codes: Int32Array;
}
