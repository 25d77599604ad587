import { join } from 'node:path';
import { CodecError } from './pure/errors.js';
import { bitrate, frameRate, modelHash, readManifest, sha256File, type ModelManifest, type StreamingGraphSpec } from './manifest.js';
import { createSession, ort, type LoadedSession, type RuntimeOptions, type Tensor } from './runtime.js';
import { StreamDecoder, tailAudio, validateTokens, type DecodeWindow } from './pure/stream-decoder.js';
import { StreamEncoder, concatTokens, sliceTokens, type EncodeWindow } from './stream-encoder.js';
import type { TokenBlock } from './pure/types.js';
import { concat, resampleAll } from './resample.js';

export interface OfflineOptions {
  /** Keep the first N codebooks (default: all). */
  codebooks?: number;
  /** Frames per window (default 750 = 10 s at 75 Hz): bounds memory, not results. */
  chunkFrames?: number;
  /** Windows stacked into one ONNX run. */
  batch?: number;
}

export interface ModelDescription {
  name: string;
  version: string;
  sampleRate: number;
  frameRate: number;
  numCodebooks: number;
  codebookSize: number;
  causal: boolean;
  provider: 'cpu' | 'cuda';
  fallbackReason?: string;
  /** identity of the token space, as recorded in .tok files */
  hash: string;
  bitrates: { codebooks: number; bitsPerSecond: number }[];
}

/** A codec model: its manifest and its two ONNX sessions. */
export class CodecModel {
  private cachedHash: string | undefined;

  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    private readonly enc: LoadedSession,
    /** absent when loaded encoder-only */
    private readonly dec: LoadedSession | undefined,
    /** the stateful streaming graphs, when the manifest has them */
    private readonly encStep?: LoadedSession,
    private readonly decStep?: LoadedSession,
  ) {}

  /**
   * Loads and checks a model folder (manifest, graph hashes, graph I/O names). `parts: 'encoder'`
   * loads only the offline encoder (corpus preparation): a third of the start-up time, and no
   * decoder in memory.
   */
  static async load(dir: string, opts: RuntimeOptions = {}, parts: 'all' | 'encoder' = 'all'): Promise<CodecModel> {
    const manifest = await readManifest(dir);
    const { encoder, decoder } = manifest;
    const enc = await loadGraph(dir, encoder, [encoder.input.name], [encoder.output.name], opts);
    if (parts === 'encoder') return new CodecModel(dir, manifest, enc, undefined);
    const dec = await loadGraph(dir, decoder, [decoder.input.name], [decoder.output.name], opts);
    const s = encoder.streaming;
    const encStep = s && (await loadGraph(dir, s, [s.input.name, s.stateInput.name], [s.output.name, s.stateOutput.name], opts));
    const d = decoder.streaming;
    const decStep = d && (await loadGraph(dir, d, [d.input.name, d.stateInput.name], [d.output.name, d.finalOutput.name, d.stateOutput.name], opts));
    return new CodecModel(dir, manifest, enc, dec, encStep, decStep);
  }

  get name(): string {
    return this.manifest.name;
  }

  /** Identity of the token space (see modelHash); what .tok files record. */
  get hash(): string {
    return (this.cachedHash ??= modelHash(this.manifest));
  }

  /** Execution provider actually in use ("cpu" or "cuda"). */
  get provider(): 'cpu' | 'cuda' {
    return this.enc.provider;
  }

  get fallbackReason(): string | undefined {
    return this.enc.fallbackReason;
  }

  /** Runs the encoder on equal-length windows in one batch; returns all codebooks per window. */
  async encodeBatch(audio: Float32Array[]): Promise<TokenBlock[]> {
    const hop = this.manifest.hopLength;
    const { tensor, n } = stackAudio(audio, hop);
    const { input, output } = this.manifest.encoder;
    const result = await this.enc.session.run({ [input.name]: tensor });
    const codes = result[output.name];
    const [b, k, t] = codes.dims;
    if (b !== audio.length || k !== this.manifest.numCodebooks || t !== n / hop) {
      throw new CodecError('model_broken', `encoder returned shape [${codes.dims}], expected [${audio.length}, ${this.manifest.numCodebooks}, ${n / hop}]`);
    }
    return splitCodes(codes.data as BigInt64Array, b, k, t);
  }

  /** True when the model has a stateful streaming encoder (manifest `encoder.streaming`). */
  get hasStreamingEncoder(): boolean {
    return this.encStep !== undefined;
  }

  /** True when the model has a stateful streaming decoder (manifest `decoder.streaming`). */
  get hasStreamingDecoder(): boolean {
    return this.decStep !== undefined;
  }

  /**
   * One step of the stateful streaming encoder for several streams at once: chunk i of equal length
   * continues the stream whose state is states[i]. Returns all codebooks per chunk and the next states.
   */
  async encodeStepBatch(audio: Float32Array[], states: Float32Array[]): Promise<{ tokens: TokenBlock[]; states: Float32Array[] }> {
    const spec = this.manifest.encoder.streaming;
    if (!spec || !this.encStep) throw new CodecError('invalid_argument', `model ${this.name} has no streaming encoder`);
    const { tensor, n } = stackAudio(audio, spec.chunkMultiple);
    const [b, k, t] = [audio.length, this.manifest.numCodebooks, n / this.manifest.hopLength];
    const out = await runStep(this.encStep.session, spec, { [spec.input.name]: tensor }, states, { [spec.output.name]: [b, k, t] });
    return { tokens: splitCodes(out.outputs[spec.output.name].data as BigInt64Array, b, k, t), states: out.states };
  }

  /**
   * One step of the stateful streaming decoder for several streams: chunk i (equal shapes) continues
   * the stream whose state is states[i]. Returns the audio each chunk completed, each stream's
   * `final` samples (what it would end with now) and the next states (manifest `decoder.streaming`).
   */
  async decodeStepBatch(blocks: TokenBlock[], states: Float32Array[]): Promise<{ audio: Float32Array[]; finals: Float32Array[]; states: Float32Array[] }> {
    const spec = this.manifest.decoder.streaming;
    if (!spec || !this.decStep) throw new CodecError('invalid_argument', `model ${this.name} has no streaming decoder`);
    const t = blocks[0]?.numFrames ?? 0;
    if (t === 0 || t % spec.chunkMultiple !== 0) throw new CodecError('invalid_argument', `chunk of ${t} frames must be a positive multiple of ${spec.chunkMultiple}`);
    const b = blocks.length;
    const n = t * this.manifest.hopLength;
    const out = await runStep(this.decStep.session, spec, { [spec.input.name]: stackCodes(this.manifest, blocks) }, states, {
      [spec.output.name]: [b, n],
      [spec.finalOutput.name]: [b, spec.delaySamples],
    });
    return {
      audio: splitRows(out.outputs[spec.output.name].data as Float32Array, b, n),
      finals: splitRows(out.outputs[spec.finalOutput.name].data as Float32Array, b, spec.delaySamples),
      states: out.states,
    };
  }

  /** Runs the decoder on equal-shape token windows in one batch. */
  async decodeBatch(blocks: TokenBlock[]): Promise<Float32Array[]> {
    const t = blocks[0]?.numFrames ?? 0;
    if (t === 0 && blocks.every((b) => b.numFrames === 0 && b.numCodebooks === blocks[0].numCodebooks)) return blocks.map(() => new Float32Array(0));
    if (!this.dec) throw new CodecError('invalid_argument', `model ${this.name} was loaded without its decoder`);
    const { input, output } = this.manifest.decoder;
    const result = await this.dec.session.run({ [input.name]: stackCodes(this.manifest, blocks) });
    const audio = result[output.name];
    const n = t * this.manifest.hopLength;
    if (audio.dims[0] !== blocks.length || audio.dims[1] !== n) {
      throw new CodecError('model_broken', `decoder returned shape [${audio.dims}], expected [${blocks.length}, ${n}]`);
    }
    return splitRows(audio.data as Float32Array, blocks.length, n);
  }

  /**
   * Encodes windows from a StreamEncoder, keeping the first `codebooks` codebooks. Stateful chunks
   * (`carry`) run one after another, each advancing its stream's state.
   */
  async encodeWindows(windows: EncodeWindow[], codebooks = this.manifest.numCodebooks): Promise<TokenBlock[]> {
    if (windows.some((w) => w.carry)) {
      const out: TokenBlock[] = [];
      for (const w of windows) {
        if (!w.carry) throw new CodecError('invalid_argument', 'stateful chunks and context windows cannot be mixed');
        const { tokens, states } = await this.encodeStepBatch([w.audio], [w.carry.value]);
        w.carry.value = states[0];
        out.push(sliceTokens(tokens[0], w.keepFrom, w.keepCount, codebooks));
      }
      return out;
    }
    return runGrouped(windows, (w) => w.audio.length, async (group) => {
      const codes = await this.encodeBatch(group.map((w) => w.audio));
      return group.map((w, i) => sliceTokens(codes[i], w.keepFrom, w.keepCount, codebooks));
    });
  }

  /**
   * Decodes windows from a StreamDecoder. Stateful chunks (`carry`) run one after another, each
   * advancing its stream's state; a tail window gives the stream's final samples.
   */
  async decodeWindows(windows: DecodeWindow[]): Promise<Float32Array[]> {
    if (windows.some((w) => w.carry)) {
      const out: Float32Array[] = [];
      for (const w of windows) {
        if (!w.carry) throw new CodecError('invalid_argument', 'stateful chunks and context windows cannot be mixed');
        if (!w.tail) {
          const r = await this.decodeStepBatch([w.tokens], [w.carry.value]);
          [w.carry.value, w.carry.final] = [r.states[0], r.finals[0]];
          out.push(r.audio[0].subarray(w.keepFrom, w.keepFrom + w.keepCount));
        } else out.push(tailAudio(w));
      }
      return out;
    }
    return runGrouped(windows, (w) => w.tokens.numFrames, async (group) => {
      const audio = await this.decodeBatch(group.map((w) => w.tokens));
      return group.map((w, i) => audio[i].subarray(w.keepFrom, w.keepFrom + w.keepCount));
    });
  }

  /** Encodes a stream of model-rate mono PCM chunks with bounded memory, yielding tokens in order. */
  async *encodeStream(pcm: AsyncIterable<Float32Array> | Iterable<Float32Array>, opts: OfflineOptions = {}): AsyncGenerator<TokenBlock> {
    const codebooks = this.checkCodebooks(opts.codebooks);
    const batch = opts.batch ?? 2;
    const enc = new StreamEncoder(this.manifest, { chunkFrames: opts.chunkFrames ?? 750, tightFinal: true });
    let pending: EncodeWindow[] = [];
    for await (const chunk of pcm) {
      pending.push(...enc.push(chunk));
      while (pending.length >= batch) {
        yield* await this.encodeWindows(pending.splice(0, batch), codebooks);
      }
    }
    pending.push(...enc.finish());
    for (; pending.length > 0; pending = pending.slice(batch)) yield* await this.encodeWindows(pending.slice(0, batch), codebooks);
  }

  /** Decodes a stream of token blocks with bounded memory, yielding model-rate PCM in order. */
  async *decodeStream(tokens: AsyncIterable<TokenBlock> | Iterable<TokenBlock>, opts: OfflineOptions = {}): AsyncGenerator<Float32Array> {
    let dec: StreamDecoder | undefined;
    const batch = opts.batch ?? 2;
    let pending: DecodeWindow[] = [];
    for await (const block of tokens) {
      dec ??= new StreamDecoder(this.manifest, { chunkFrames: opts.chunkFrames ?? 750, numCodebooks: block.numCodebooks, tightFinal: true });
      pending.push(...dec.push(block));
      while (pending.length >= batch) yield* await this.decodeWindows(pending.splice(0, batch));
    }
    if (!dec) return;
    pending.push(...dec.finish());
    for (; pending.length > 0; pending = pending.slice(batch)) yield* await this.decodeWindows(pending.slice(0, batch));
  }

  /** Encodes a whole signal at any sample rate (resampled to the model's). */
  async encode(pcm: Float32Array, sampleRate: number, opts: OfflineOptions = {}): Promise<TokenBlock> {
    const audio = sampleRate === this.manifest.sampleRate ? pcm : await resampleAll(pcm, sampleRate, this.manifest.sampleRate);
    const blocks: TokenBlock[] = [];
    for await (const b of this.encodeStream([audio], opts)) blocks.push(b);
    return concatTokens(blocks, this.checkCodebooks(opts.codebooks));
  }

  /** Decodes tokens to model-rate PCM. */
  async decode(tokens: TokenBlock, opts: OfflineOptions = {}): Promise<Float32Array> {
    validateTokens(this.manifest, tokens);
    const parts: Float32Array[] = [];
    for await (const p of this.decodeStream([tokens], opts)) parts.push(p);
    return concat(parts);
  }

  /** What a client needs to know to use this model (CLI `models`, GET /v1/models). */
  describe(): ModelDescription {
    const m = this.manifest;
    return {
      name: m.name,
      version: m.version,
      sampleRate: m.sampleRate,
      frameRate: frameRate(m),
      numCodebooks: m.numCodebooks,
      codebookSize: m.codebookSize,
      causal: m.causal,
      provider: this.provider,
      ...(this.fallbackReason ? { fallbackReason: this.fallbackReason } : {}),
      hash: this.hash,
      bitrates: Array.from({ length: m.numCodebooks }, (_, i) => ({ codebooks: i + 1, bitsPerSecond: bitrate(m, i + 1) })),
    };
  }

  checkCodebooks(codebooks: number | undefined): number {
    const n = codebooks ?? this.manifest.numCodebooks;
    if (!Number.isInteger(n) || n < 1 || n > this.manifest.numCodebooks) {
      throw new CodecError('model_mismatch', `codebooks must be 1..${this.manifest.numCodebooks} for model "${this.manifest.name}", got ${codebooks}`);
    }
    return n;
  }

  async release(): Promise<void> {
    await Promise.all([this.enc.session.release(), this.dec?.session.release(), this.encStep?.session.release(), this.decStep?.session.release()]);
  }
}

/** Equal-length signals as one float32 [batch, n] tensor; n a positive multiple of `multiple`. */
function stackAudio(audio: Float32Array[], multiple: number): { tensor: Tensor; n: number } {
  const n = audio[0]?.length ?? 0;
  if (audio.some((a) => a.length !== n)) throw new CodecError('invalid_argument', 'batched windows must have equal lengths');
  if (n === 0 || n % multiple !== 0) throw new CodecError('invalid_argument', `window length ${n} must be a positive multiple of ${multiple}`);
  const data = new Float32Array(audio.length * n);
  audio.forEach((a, i) => data.set(a, i * n));
  return { tensor: new ort.Tensor('float32', data, [audio.length, n]), n };
}

/** Equal-shape, validated token blocks as one int64 [batch, codebooks, frames] tensor. */
function stackCodes(manifest: ModelManifest, blocks: TokenBlock[]): Tensor {
  const k = blocks[0]?.numCodebooks ?? 0;
  const t = blocks[0]?.numFrames ?? 0;
  if (blocks.some((b) => b.numCodebooks !== k || b.numFrames !== t)) throw new CodecError('invalid_argument', 'batched windows must have equal shapes');
  const data = new BigInt64Array(blocks.length * k * t);
  blocks.forEach((b, i) => {
    validateTokens(manifest, b);
    for (let j = 0; j < b.codes.length; j++) data[i * k * t + j] = BigInt(b.codes[j]);
  });
  return new ort.Tensor('int64', data, [blocks.length, k, t]);
}

/** Rows of an int64 [b, k, t] output as token blocks. */
function splitCodes(flat: BigInt64Array, b: number, k: number, t: number): TokenBlock[] {
  return Array.from({ length: b }, (_, i) => ({ numCodebooks: k, numFrames: t, codes: Int32Array.from(flat.subarray(i * k * t, (i + 1) * k * t), Number) }));
}

/** Rows of a float32 [b, n] output, copied out of the runtime's buffer. */
function splitRows(flat: Float32Array, b: number, n: number): Float32Array[] {
  return Array.from({ length: b }, (_, i) => flat.slice(i * n, (i + 1) * n));
}

/** Runs a streaming graph on stacked states; checks every output's shape and splits the next states. */
async function runStep(
  session: LoadedSession['session'],
  spec: StreamingGraphSpec,
  feeds: Record<string, Tensor>,
  states: Float32Array[],
  expected: Record<string, number[]>,
): Promise<{ outputs: Record<string, Tensor>; states: Float32Array[] }> {
  const b = states.length;
  const size = spec.stateSize;
  if (Object.values(feeds).some((f) => f.dims[0] !== b) || states.some((st) => st.length !== size)) {
    throw new CodecError('invalid_argument', `need one state of ${size} values per chunk`);
  }
  const state = new Float32Array(b * size);
  states.forEach((st, i) => state.set(st, i * size));
  const outputs = await session.run({ ...feeds, [spec.stateInput.name]: new ort.Tensor('float32', state, [b, size]) });
  for (const [name, dims] of Object.entries({ ...expected, [spec.stateOutput.name]: [b, size] })) {
    if (outputs[name].dims.join() !== dims.join()) throw new CodecError('model_broken', `${spec.file}: output ${name} has shape [${outputs[name].dims}], expected [${dims}]`);
  }
  return { outputs, states: splitRows(outputs[spec.stateOutput.name].data as Float32Array, b, size) };
}

/** Checks a graph file against its manifest entry (hash, I/O names) and opens an ORT session on it. */
async function loadGraph(dir: string, spec: { file: string; sha256: string }, inputs: string[], outputs: string[], opts: RuntimeOptions): Promise<LoadedSession> {
  const path = join(dir, spec.file);
  let sha: string;
  try {
    sha = await sha256File(path);
  } catch (e) {
    throw new CodecError('model_broken', `${path}: cannot read (${(e as Error).message})`);
  }
  if (sha !== spec.sha256) throw new CodecError('model_broken', `${path}: sha256 ${sha} != manifest ${spec.sha256}`);
  let loaded: LoadedSession;
  try {
    loaded = await createSession(path, opts);
  } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError('model_broken', `${path}: onnxruntime cannot load it (${(e as Error).message})`);
  }
  const { session } = loaded;
  if (!inputs.every((n) => session.inputNames.includes(n)) || !outputs.every((n) => session.outputNames.includes(n))) {
    await session.release();
    throw new CodecError('model_broken', `${path}: graph I/O ${session.inputNames}→${session.outputNames} does not match manifest ${inputs}→${outputs}`);
  }
  return loaded;
}

/** Runs `run` once per group of items with equal `key` (equal tensor shapes), keeping input order. */
async function runGrouped<W, R>(items: W[], key: (w: W) => number, run: (group: W[]) => Promise<R[]>): Promise<R[]> {
  const out = new Array<R>(items.length);
  const groups = new Map<number, number[]>();
  items.forEach((w, i) => {
    const k = key(w);
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  for (const idx of groups.values()) {
    const res = await run(idx.map((i) => items[i]));
    idx.forEach((i, j) => (out[i] = res[j]));
  }
  return out;
}
