/**
 * Client-side decoding: token packets -> PCM on the listener's own machine, with the same
 * streaming windows (codec/stream-decoder.ts, codec/window-plan.ts) the server uses, so the
 * result equals the server's decode of the same packets. The ONNX runtime is passed in:
 * onnxruntime-web (wasm) in browsers, onnxruntime-node in Node (decoder-node.ts). No Node or DOM
 * imports here or in the codec modules it uses.
 *
 *   const decoder = await loadDecoder({ baseUrl: 'http://127.0.0.1:8080', model: 'default', apiKey, ort, cache });
 *   const stream = new TokenStreamDecoder(decoder, { numCodebooks: 4 });
 *   for (const { firstSample, pcm } of await stream.push(packet.firstFrame, packet.tokens)) play(firstSample, pcm);
 */
import type { ModelManifest } from '../../codec/manifest.js';
import { StreamDecoder, type DecodeWindow } from '../../codec/stream-decoder.js';
import type { Tokens } from './protocol.js';

/** The part of onnxruntime's API used here; onnxruntime-web and onnxruntime-node both fit. */
export interface OrtLike {
  Tensor: new (type: 'int64', data: BigInt64Array, dims: readonly number[]) => unknown;
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
}

export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, never>): Promise<Record<string, { readonly data: unknown; readonly dims: readonly number[] }>>;
  release(): Promise<void>;
}

export class DecoderError extends Error {
  constructor(readonly code: 'model_broken' | 'fetch_failed' | 'unauthorized' | 'model_mismatch', message: string) {
    super(message);
    this.name = 'DecoderError';
  }
}

/** One loaded decoder graph. Runs are serialised: an ONNX session runs one input at a time. */
export class LocalDecoder {
  private tail: Promise<unknown> = Promise.resolve();
  /** Runs done, their total wall time, and the model-rate samples they kept (speed = samples / rate / seconds). */
  readonly stats = { runs: 0, runMs: 0, samples: 0 };

  private constructor(private readonly ort: OrtLike, private readonly session: OrtSessionLike, readonly manifest: ModelManifest) {}

  static async create(ort: OrtLike, manifest: ModelManifest, graph: Uint8Array, sessionOptions: Record<string, unknown> = {}): Promise<LocalDecoder> {
    let session: OrtSessionLike;
    try {
      session = await ort.InferenceSession.create(graph, { graphOptimizationLevel: 'all', ...sessionOptions });
    } catch (e) {
      throw new DecoderError('model_broken', `onnxruntime cannot load the decoder of "${manifest.name}": ${(e as Error).message}`);
    }
    const { input, output } = manifest.decoder;
    if (!session.inputNames.includes(input.name) || !session.outputNames.includes(output.name)) {
      throw new DecoderError('model_broken', `decoder I/O ${session.inputNames}→${session.outputNames} does not match the manifest's ${input.name}→${output.name}`);
    }
    return new LocalDecoder(ort, session, manifest);
  }

  /** Decodes one window and keeps its middle samples (as the server's CodecModel.decodeWindows). */
  run(w: DecodeWindow): Promise<Float32Array> {
    const result = this.tail.then(() => this.runNow(w));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async runNow(w: DecodeWindow): Promise<Float32Array> {
    const { numCodebooks: k, numFrames: t, codes } = w.tokens;
    const data = new BigInt64Array(codes.length);
    for (let i = 0; i < codes.length; i++) data[i] = BigInt(codes[i]);
    const { input, output } = this.manifest.decoder;
    const started = performance.now();
    const out = await this.session.run({ [input.name]: new this.ort.Tensor('int64', data, [1, k, t]) as never });
    const audio = out[output.name];
    const n = t * this.manifest.hopLength;
    if (audio.dims[0] !== 1 || audio.dims[1] !== n) throw new DecoderError('model_broken', `decoder returned shape [${audio.dims}], expected [1, ${n}]`);
    const kept = (audio.data as Float32Array).slice(w.keepFrom, w.keepFrom + w.keepCount);
    this.stats.runs++;
    this.stats.runMs += performance.now() - started;
    this.stats.samples += kept.length;
    return kept;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Model-rate audio of frames [firstSample / hop, ...): sample n·hop is the start of frame n. */
export interface DecodedAudio {
  firstSample: number;
  pcm: Float32Array;
}

export interface TokenStreamDecoderOptions {
  numCodebooks: number;
  /** Frames per steady-state window (default 6 = 80 ms at 75 Hz). */
  chunkFrames?: number;
  /**
   * Decode every frame whose lookahead has arrived after each packet (default true: lowest
   * latency, windows of varying start); false waits for whole chunks, as a server stream does.
   */
  eager?: boolean;
}

/**
 * One publisher's token stream -> audio, in order. Frame indices place audio in time; a gap
 * (packets dropped for a slow listener) ends the current run (its tail is decoded as a stream
 * end), is filled with silence, and decoding restarts at the new frame, as a new stream would.
 */
export class TokenStreamDecoder {
  private dec: StreamDecoder | undefined;
  private segmentStart = 0;
  private expected = 0;
  private tail: Promise<unknown> = Promise.resolve();
  /** Gaps seen and frames they lost. */
  gaps = 0;
  framesLost = 0;

  constructor(private readonly decoder: LocalDecoder, private readonly opts: TokenStreamDecoderOptions) {}

  /** Frame the next packet should start at. */
  get nextFrame(): number {
    return this.expected;
  }

  /** Tokens of frames [firstFrame, firstFrame + numFrames); resolves with the audio they complete. */
  push(firstFrame: number, tokens: Tokens): Promise<DecodedAudio[]> {
    const hop = this.decoder.manifest.hopLength;
    const parts: (DecodedAudio | Promise<DecodedAudio>)[] = [];
    let block = tokens;
    let first = firstFrame;
    if (this.dec && first < this.expected) {
      // overlap with what was decoded already: keep only the new frames
      const skip = Math.min(block.numFrames, this.expected - first);
      block = sliceFrames(block, skip);
      first += skip;
      if (block.numFrames === 0) return Promise.resolve([]);
    }
    if (this.dec && first > this.expected) {
      this.gaps++;
      this.framesLost += first - this.expected;
      parts.push(...this.runAll(this.dec.finish()));
      parts.push({ firstSample: this.expected * hop, pcm: new Float32Array((first - this.expected) * hop) });
      this.dec = undefined;
    }
    if (!this.dec) {
      this.dec = new StreamDecoder(this.decoder.manifest, { chunkFrames: this.opts.chunkFrames ?? 6, numCodebooks: this.opts.numCodebooks });
      this.segmentStart = first;
    }
    const windows = this.dec.push(block);
    if (this.opts.eager ?? true) windows.push(...this.dec.flush());
    this.expected = first + block.numFrames;
    parts.push(...this.runAll(windows));
    return this.ordered(parts);
  }

  /** The stream ended: decodes the frames still waiting for lookahead. */
  finish(): Promise<DecodedAudio[]> {
    const parts = this.dec ? this.runAll(this.dec.finish()) : [];
    this.dec = undefined;
    return this.ordered(parts);
  }

  private runAll(windows: DecodeWindow[]): Promise<DecodedAudio>[] {
    const offset = this.segmentStart * this.decoder.manifest.hopLength;
    return windows.map((w) => {
      const p = this.decoder.run(w).then((pcm) => ({ firstSample: offset + w.firstSample, pcm }));
      p.catch(() => undefined); // surfaced in order by ordered(); this only keeps an early failure from counting as unhandled
      return p;
    });
  }

  /** Resolves after every earlier push's audio, so callers see audio in timeline order. */
  private ordered(parts: (DecodedAudio | Promise<DecodedAudio>)[]): Promise<DecodedAudio[]> {
    const result = this.tail.then(() => Promise.all(parts));
    this.tail = result.catch(() => undefined);
    return result;
  }
}

function sliceFrames(t: Tokens, from: number): Tokens {
  const n = t.numFrames - from;
  const codes = new Int32Array(t.numCodebooks * n);
  for (let k = 0; k < t.numCodebooks; k++) codes.set(t.codes.subarray(k * t.numFrames + from, (k + 1) * t.numFrames), k * n);
  return { numCodebooks: t.numCodebooks, numFrames: n, codes };
}

/** Where decoder graphs are kept between sessions (browser: Cache API; Node: a folder). Keys are immutable URLs. */
export interface GraphCache {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface LoadDecoderOptions {
  /** http(s)://host:port of the tokstream server */
  baseUrl: string;
  model: string;
  apiKey?: string;
  ort: OrtLike;
  cache?: GraphCache;
  sessionOptions?: Record<string, unknown>;
  fetch?: typeof fetch;
}

/**
 * Fetches the model's manifest and decoder graph from the server (the graph by its content hash,
 * through `cache`), checks the hash where WebCrypto exists, and loads it into `ort`.
 */
export async function loadDecoder(opts: LoadDecoderOptions): Promise<LocalDecoder & { fromCache: boolean }> {
  const get = opts.fetch ?? fetch;
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  const base = `${opts.baseUrl.replace(/\/$/, '')}/v1/models/${encodeURIComponent(opts.model)}`;
  const manifest = (await fetchOk(get, `${base}/manifest.json`, headers).then((r) => r.json())) as ModelManifest;
  const sha = manifest.decoder.sha256;
  const url = `${base}/decoder.onnx?sha256=${sha}`;
  let graph = await opts.cache?.get(url);
  const fromCache = graph !== undefined;
  if (graph && !(await hashMatches(graph, sha))) {
    await opts.cache?.delete(url); // a damaged cache entry: fetch again
    graph = undefined;
  }
  if (!graph) {
    graph = new Uint8Array(await (await fetchOk(get, url, headers)).arrayBuffer());
    if (!(await hashMatches(graph, sha))) throw new DecoderError('model_broken', `decoder graph of "${opts.model}" does not match its sha256 ${sha}`);
    await opts.cache?.put(url, graph);
  }
  const decoder = await LocalDecoder.create(opts.ort, manifest, graph, opts.sessionOptions);
  return Object.assign(decoder, { fromCache });
}

async function fetchOk(get: typeof fetch, url: string, headers: Record<string, string>): Promise<Response> {
  let r: Response;
  try {
    r = await get(url, { headers });
  } catch (e) {
    throw new DecoderError('fetch_failed', `${url}: ${(e as Error).message}`);
  }
  if (r.status === 401 || r.status === 403) throw new DecoderError('unauthorized', `${url}: ${r.status}`);
  if (r.status === 404) throw new DecoderError('model_mismatch', `${url}: 404 (${await r.text()})`);
  if (!r.ok) throw new DecoderError('fetch_failed', `${url}: HTTP ${r.status}`);
  return r;
}

/** True when the bytes hash to `sha`, or when this environment has no WebCrypto to check with. */
async function hashMatches(bytes: Uint8Array, sha: string): Promise<boolean> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (!subtle) return true;
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes as unknown as ArrayBuffer));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('') === sha;
}
