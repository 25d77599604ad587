import { join } from 'node:path';
import { CodecError } from './errors.js';
import { bitrate, frameRate, modelHash, readManifest, sha256File, type ModelManifest } from './manifest.js';
import { createSession, ort, type LoadedSession, type RuntimeOptions } from './runtime.js';
import { StreamDecoder, validateTokens, type DecodeWindow } from './stream-decoder.js';
import { StreamEncoder, concatTokens, sliceTokens, type EncodeWindow } from './stream-encoder.js';
import type { TokenBlock } from './types.js';
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
    private readonly dec: LoadedSession,
  ) {}

  /** Loads and checks a model folder (manifest, graph hashes, graph I/O names). */
  static async load(dir: string, opts: RuntimeOptions = {}): Promise<CodecModel> {
    const manifest = await readManifest(dir);
    const sessions: LoadedSession[] = [];
    for (const spec of [manifest.encoder, manifest.decoder]) {
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
      if (!session.inputNames.includes(spec.input.name) || !session.outputNames.includes(spec.output.name)) {
        throw new CodecError('model_broken', `${path}: graph I/O ${session.inputNames}→${session.outputNames} does not match manifest ${spec.input.name}→${spec.output.name}`);
      }
      sessions.push(loaded);
    }
    return new CodecModel(dir, manifest, sessions[0], sessions[1]);
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
    const n = audio[0]?.length ?? 0;
    const hop = this.manifest.hopLength;
    if (audio.some((a) => a.length !== n)) throw new CodecError('invalid_argument', 'batched windows must have equal lengths');
    if (n === 0 || n % hop !== 0) throw new CodecError('invalid_argument', `window length ${n} must be a positive multiple of ${hop}`);
    const data = new Float32Array(audio.length * n);
    audio.forEach((a, i) => data.set(a, i * n));
    const { input, output } = this.manifest.encoder;
    const result = await this.enc.session.run({ [input.name]: new ort.Tensor('float32', data, [audio.length, n]) });
    const codes = result[output.name];
    const [b, k, t] = codes.dims;
    if (b !== audio.length || k !== this.manifest.numCodebooks || t !== n / hop) {
      throw new CodecError('model_broken', `encoder returned shape [${codes.dims}], expected [${audio.length}, ${this.manifest.numCodebooks}, ${n / hop}]`);
    }
    const flat = codes.data as BigInt64Array;
    return audio.map((_, i) => ({ numCodebooks: k, numFrames: t, codes: Int32Array.from(flat.subarray(i * k * t, (i + 1) * k * t), Number) }));
  }

  /** Runs the decoder on equal-shape token windows in one batch. */
  async decodeBatch(blocks: TokenBlock[]): Promise<Float32Array[]> {
    const k = blocks[0]?.numCodebooks ?? 0;
    const t = blocks[0]?.numFrames ?? 0;
    if (blocks.some((b) => b.numCodebooks !== k || b.numFrames !== t)) throw new CodecError('invalid_argument', 'batched windows must have equal shapes');
    if (t === 0) return blocks.map(() => new Float32Array(0));
    const data = new BigInt64Array(blocks.length * k * t);
    blocks.forEach((b, i) => {
      validateTokens(this.manifest, b);
      for (let j = 0; j < b.codes.length; j++) data[i * k * t + j] = BigInt(b.codes[j]);
    });
    const { input, output } = this.manifest.decoder;
    const result = await this.dec.session.run({ [input.name]: new ort.Tensor('int64', data, [blocks.length, k, t]) });
    const audio = result[output.name];
    const n = t * this.manifest.hopLength;
    if (audio.dims[0] !== blocks.length || audio.dims[1] !== n) {
      throw new CodecError('model_broken', `decoder returned shape [${audio.dims}], expected [${blocks.length}, ${n}]`);
    }
    const flat = audio.data as Float32Array;
    return blocks.map((_, i) => flat.slice(i * n, (i + 1) * n));
  }

  /** Encodes windows from a StreamEncoder, keeping the first `codebooks` codebooks. */
  async encodeWindows(windows: EncodeWindow[], codebooks = this.manifest.numCodebooks): Promise<TokenBlock[]> {
    return runGrouped(windows, (w) => w.audio.length, async (group) => {
      const codes = await this.encodeBatch(group.map((w) => w.audio));
      return group.map((w, i) => sliceTokens(codes[i], w.keepFrom, w.keepCount, codebooks));
    });
  }

  async decodeWindows(windows: DecodeWindow[]): Promise<Float32Array[]> {
    return runGrouped(windows, (w) => w.tokens.numFrames, async (group) => {
      const audio = await this.decodeBatch(group.map((w) => w.tokens));
      return group.map((w, i) => audio[i].subarray(w.keepFrom, w.keepFrom + w.keepCount));
    });
  }

  /** Encodes a stream of model-rate mono PCM chunks with bounded memory, yielding tokens in order. */
  async *encodeStream(pcm: AsyncIterable<Float32Array> | Iterable<Float32Array>, opts: OfflineOptions = {}): AsyncGenerator<TokenBlock> {
    const codebooks = this.checkCodebooks(opts.codebooks);
    const batch = opts.batch ?? 2;
    const enc = new StreamEncoder(this.manifest, { chunkFrames: opts.chunkFrames ?? 750 });
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
      dec ??= new StreamDecoder(this.manifest, { chunkFrames: opts.chunkFrames ?? 750, numCodebooks: block.numCodebooks });
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
    await Promise.all([this.enc.session.release(), this.dec.session.release()]);
  }
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
