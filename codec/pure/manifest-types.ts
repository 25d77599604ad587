/** The shape of a model's manifest.json (docs/model-contract.md); codec/manifest.ts reads and validates it. */
export const MANIFEST_FORMAT = 'tokstream-model/1';

export interface TensorSpec {
  name: string;
  dtype: 'float32' | 'int64';
  /** symbolic axes by name ("batch", "samples"), fixed axes as numbers */
  shape: (string | number)[];
}

/**
 * Optional stateful form of a graph (docs/model-contract.md, "Streaming graphs"): (chunk, state
 * [batch, stateSize]) -> (output, next state). Chunks fed in order from a zero state give one-shot
 * results, with no context recomputed.
 */
export interface StreamingGraphSpec {
  file: string;
  sha256: string;
  input: TensorSpec;
  output: TensorSpec;
  stateInput: TensorSpec;
  stateOutput: TensorSpec;
  /** float32 values per stream in the opaque state */
  stateSize: number;
  /** every chunk's length is a positive multiple of this: encoder samples (a multiple of hopLength), decoder frames */
  chunkMultiple: number;
}

/**
 * The decoder's streaming graph also returns `final` [batch, delaySamples]: the samples one-shot
 * decoding would end with if the stream ended after this chunk. Its `audio` outputs, concatenated,
 * lag one-shot output by `delaySamples` (the first delaySamples of a stream are dropped).
 */
export interface StreamingDecoderSpec extends StreamingGraphSpec {
  finalOutput: TensorSpec;
  delaySamples: number;
}

export interface GraphSpec {
  file: string;
  sha256: string;
  input: TensorSpec;
  output: TensorSpec;
  /** encoder: samples; decoder: frames */
  leftContext: number;
  /** encoder: samples; decoder: frames */
  lookahead: number;
}

export interface ModelManifest {
  format: typeof MANIFEST_FORMAT;
  name: string;
  version: string;
  description?: string;
  sampleRate: number;
  hopLength: number;
  numCodebooks: number;
  codebookSize: number;
  causal: boolean;
  encoder: GraphSpec & { streaming?: StreamingGraphSpec };
  decoder: GraphSpec & { streaming?: StreamingDecoderSpec };
  license: string;
  provenance: Record<string, unknown>;
}
