import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CodecError } from './pure/errors.js';
import { MANIFEST_FORMAT, type GraphSpec, type ModelManifest, type StreamingDecoderSpec, type StreamingGraphSpec, type TensorSpec } from './pure/manifest-types.js';

export { MANIFEST_FORMAT, type GraphSpec, type ModelManifest, type StreamingDecoderSpec, type StreamingGraphSpec, type TensorSpec } from './pure/manifest-types.js';

function fail(path: string, msg: string): never {
  throw new CodecError('model_broken', `${path}: ${msg}`);
}

function int(path: string, v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(path, `"${field}" must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(path: string, v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(path, `"${field}" must be a non-empty string`);
  return v;
}

function tensor(path: string, v: unknown, field: string, dtype: TensorSpec['dtype'], rank: number): TensorSpec {
  const t = v as Partial<TensorSpec> | undefined;
  if (!t || typeof t !== 'object') fail(path, `"${field}" missing`);
  str(path, t.name, `${field}.name`);
  if (t.dtype !== dtype) fail(path, `"${field}.dtype" must be ${dtype}`);
  if (!Array.isArray(t.shape) || t.shape.length !== rank) fail(path, `"${field}.shape" must have rank ${rank}`);
  return t as TensorSpec;
}

function graphFile(path: string, g: { file?: unknown; sha256?: unknown }, field: string): { file: string; sha256: string } {
  const file = str(path, g.file, `${field}.file`);
  if (file.includes('/') || file.includes('\\') || file.startsWith('.')) fail(path, `"${field}.file" must be a plain file name`);
  const sha = str(path, g.sha256, `${field}.sha256`);
  if (!/^[0-9a-f]{64}$/.test(sha)) fail(path, `"${field}.sha256" must be 64 lowercase hex digits`);
  return { file, sha256: sha };
}

function graph(path: string, v: unknown, field: string, inDtype: TensorSpec['dtype'], inRank: number, outDtype: TensorSpec['dtype'], outRank: number): GraphSpec {
  const g = v as Partial<GraphSpec> | undefined;
  if (!g || typeof g !== 'object') fail(path, `"${field}" missing`);
  return {
    ...graphFile(path, g, field),
    input: tensor(path, g.input, `${field}.input`, inDtype, inRank),
    output: tensor(path, g.output, `${field}.output`, outDtype, outRank),
    leftContext: int(path, g.leftContext, `${field}.leftContext`, 0, 1 << 24),
    lookahead: int(path, g.lookahead, `${field}.lookahead`, 0, 1 << 24),
  };
}

function streamingGraph(path: string, v: unknown, which: 'encoder' | 'decoder', hopLength: number): StreamingGraphSpec {
  const field = `${which}.streaming`;
  const g = v as Partial<StreamingGraphSpec> | undefined;
  if (!g || typeof g !== 'object') fail(path, `"${field}" must be an object`);
  const stateInput = tensor(path, g.stateInput, `${field}.stateInput`, 'float32', 2);
  const stateOutput = tensor(path, g.stateOutput, `${field}.stateOutput`, 'float32', 2);
  const stateSize = int(path, stateInput.shape[1], `${field}.stateInput.shape[1]`, 1, 1 << 26);
  if (stateOutput.shape[1] !== stateSize) fail(path, `"${field}.stateOutput.shape[1]" must equal stateInput's (${stateSize})`);
  const chunkMultiple = int(path, g.chunkMultiple, `${field}.chunkMultiple`, 1, 1 << 24);
  if (which === 'encoder' && chunkMultiple % hopLength !== 0) fail(path, `"${field}.chunkMultiple" must be a multiple of hopLength ${hopLength}`);
  const audio = (v: unknown, f: string) => tensor(path, v, `${field}.${f}`, 'float32', 2);
  const codes = (v: unknown, f: string) => tensor(path, v, `${field}.${f}`, 'int64', 3);
  return {
    ...graphFile(path, g, field),
    input: which === 'encoder' ? audio(g.input, 'input') : codes(g.input, 'input'),
    output: which === 'encoder' ? codes(g.output, 'output') : audio(g.output, 'output'),
    stateInput,
    stateOutput,
    stateSize,
    chunkMultiple,
  };
}

function streamingDecoder(path: string, v: unknown, hopLength: number): StreamingDecoderSpec {
  const spec = streamingGraph(path, v, 'decoder', hopLength);
  const g = v as Partial<StreamingDecoderSpec>;
  const finalOutput = tensor(path, g.finalOutput, 'decoder.streaming.finalOutput', 'float32', 2);
  const delaySamples = int(path, g.delaySamples, 'decoder.streaming.delaySamples', 0, 1 << 24);
  if (finalOutput.shape[1] !== delaySamples) fail(path, `"decoder.streaming.finalOutput.shape[1]" must equal delaySamples (${delaySamples})`);
  return { ...spec, finalOutput, delaySamples };
}

/** Validates a parsed manifest; `path` only labels messages. */
export function parseManifest(json: unknown, path: string): ModelManifest {
  const m = json as Record<string, unknown>;
  if (!m || typeof m !== 'object') fail(path, 'manifest must be a JSON object');
  if (m.format !== MANIFEST_FORMAT) fail(path, `"format" must be "${MANIFEST_FORMAT}"`);
  const manifest: ModelManifest = {
    format: MANIFEST_FORMAT,
    name: str(path, m.name, 'name'),
    version: str(path, m.version, 'version'),
    description: typeof m.description === 'string' ? m.description : undefined,
    sampleRate: int(path, m.sampleRate, 'sampleRate', 1000, 384000),
    hopLength: int(path, m.hopLength, 'hopLength', 1, 1 << 16),
    numCodebooks: int(path, m.numCodebooks, 'numCodebooks', 1, 64),
    codebookSize: int(path, m.codebookSize, 'codebookSize', 2, 1 << 20),
    causal: m.causal === true,
    encoder: graph(path, m.encoder, 'encoder', 'float32', 2, 'int64', 3),
    decoder: graph(path, m.decoder, 'decoder', 'int64', 3, 'float32', 2),
    license: str(path, m.license, 'license'),
    provenance: (m.provenance && typeof m.provenance === 'object' ? m.provenance : {}) as Record<string, unknown>,
  };
  if (typeof m.causal !== 'boolean') fail(path, '"causal" must be a boolean');
  if (manifest.causal && manifest.encoder.lookahead !== 0) fail(path, 'a causal model must have encoder.lookahead 0');
  const encStreaming = (m.encoder as Record<string, unknown>).streaming;
  if (encStreaming !== undefined) {
    if (!manifest.causal) fail(path, '"encoder.streaming" needs a causal model');
    manifest.encoder.streaming = streamingGraph(path, encStreaming, 'encoder', manifest.hopLength);
  }
  const decStreaming = (m.decoder as Record<string, unknown>).streaming;
  if (decStreaming !== undefined) manifest.decoder.streaming = streamingDecoder(path, decStreaming, manifest.hopLength);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(manifest.name)) fail(path, '"name" must be 1-64 of [A-Za-z0-9._-]');
  return manifest;
}

export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CodecError('model_broken', `${path}: cannot read (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CodecError('model_broken', `${path}: invalid JSON (${(e as Error).message})`);
  }
  return parseManifest(json, path);
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Frames per second. */
export function frameRate(m: ModelManifest): number {
  return m.sampleRate / m.hopLength;
}

/** Bits per second when the first `codebooks` codebooks are kept. */
export function bitrate(m: ModelManifest, codebooks: number): number {
  return codebooks * Math.ceil(Math.log2(m.codebookSize)) * frameRate(m);
}

/**
 * Identity of a model's token space: sha256 over both graphs' hashes. Token
 * files record it so that decoding with any other model is refused.
 */
export function modelHash(m: ModelManifest): string {
  return createHash('sha256').update(`${m.encoder.sha256}:${m.decoder.sha256}`).digest('hex');
}
