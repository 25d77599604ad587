/**
 * Client-side decoding: token packets -> PCM on the listener's own machine, with the same
 * stream decoder (codec/pure/stream-decoder.ts) the server's decode streams use, so the result equals
 * the server's decode of the same packets. When the model has a stateful streaming decoder
 * (manifest `decoder.streaming`) each chunk of frames runs once with the stream's carried state;
 * otherwise the windowed decoder.onnx recomputes each chunk's context (codec/pure/window-plan.ts). The
 * ONNX runtime is passed in: onnxruntime-web (wasm) in browsers, onnxruntime-node in Node
 * (decoder-node.ts). No Node or DOM imports here or in the codec modules it uses.
 *
 *   const decoder = await loadDecoder({ baseUrl: 'http://127.0.0.1:8080', model: 'default', apiKey, ort, cache });
 *   const stream = new TokenStreamDecoder(decoder, { numCodebooks: 4 });
 *   for (const { firstSample, pcm } of await stream.push(packet.firstFrame, packet.tokens)) play(firstSample, pcm);
 */
import type { ModelManifest } from '../../codec/pure/manifest-types.js';
import { StreamDecoder, tailAudio, type DecodeWindow } from '../../codec/pure/stream-decoder.js';
import type { StreamCarry, TokenBlock } from '../../codec/pure/types.js';
import type { Tokens } from '../../protocol/stream.js';

/** The part of onnxruntime's API used here; onnxruntime-web and onnxruntime-node both fit. */
export interface OrtLike {
  Tensor: {
    new (type: 'int64', data: BigInt64Array, dims: readonly number[]): unknown;
    new (type: 'float32', data: Float32Array, dims: readonly number[]): unknown;
  };
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
}

type OrtOutput = { readonly data: unknown; readonly dims: readonly number[] };

export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, never>): Promise<Record<string, OrtOutput>>;
  release(): Promise<void>;
}

export class DecoderError extends Error {
  constructor(readonly code: 'model_broken' | 'fetch_failed' | 'unauthorized' | 'model_mismatch' | 'invalid_argument', message: string) {
    super(message);
    this.name = 'DecoderError';
  }
}

/**
 * A model's decoder graph as bytes: the windowed decoder.onnx, or the stateful decoder_stream.onnx
 * with `weights`, the bytes of the manifest's `decoder.file`: the streaming graph's initializers are
 * ONNX external data pointing into that file (docs/model-contract.md, "Streaming graphs").
 */
export type DecoderGraph = { windowed: Uint8Array } | { streaming: Uint8Array; weights: Uint8Array };

/** One loaded decoder graph. Runs are serialised: an ONNX session runs one input at a time, and a stream's chunks share its state. */
export class LocalDecoder {
  private queue: Promise<unknown> = Promise.resolve();
  /** Runs done, their total wall time, and the model-rate samples kept, tail windows (no run) included (speed = samples / rate / seconds). */
  readonly stats = { runs: 0, runMs: 0, samples: 0 };

  private constructor(
    private readonly ort: OrtLike,
    private readonly session: OrtSessionLike,
    readonly manifest: ModelManifest,
    /** true: the session is the stateful streaming decoder; windows must carry a state */
    readonly stateful: boolean,
  ) {}

  static async create(ort: OrtLike, manifest: ModelManifest, graph: DecoderGraph, sessionOptions: Record<string, unknown> = {}): Promise<LocalDecoder> {
    const stateful = 'streaming' in graph;
    const spec = manifest.decoder.streaming;
    let inputs = [manifest.decoder.input.name];
    let outputs = [manifest.decoder.output.name];
    if (stateful) {
      // the server sends its parsed manifest, which carries stateSize (codec/manifest.ts)
      if (!spec || spec.stateSize !== spec.stateInput.shape[1]) throw new DecoderError('model_broken', `the manifest of "${manifest.name}" has no valid decoder.streaming`);
      inputs = [spec.input.name, spec.stateInput.name];
      outputs = [spec.output.name, spec.finalOutput.name, spec.stateOutput.name];
    }
    const options = { graphOptimizationLevel: 'all', ...sessionOptions };
    let session: OrtSessionLike;
    try {
      session = await (stateful
        ? ort.InferenceSession.create(graph.streaming, { ...options, externalData: [{ path: manifest.decoder.file, data: graph.weights }] })
        : ort.InferenceSession.create(graph.windowed, options));
    } catch (e) {
      throw new DecoderError('model_broken', `onnxruntime cannot load the decoder of "${manifest.name}": ${(e as Error).message}`);
    }
    if (!inputs.every((n) => session.inputNames.includes(n)) || !outputs.every((n) => session.outputNames.includes(n))) {
      await session.release();
      throw new DecoderError('model_broken', `decoder I/O ${session.inputNames}→${session.outputNames} does not match the manifest's ${inputs}→${outputs}`);
    }
    return new LocalDecoder(ort, session, manifest, stateful);
  }

  /**
   * Decodes one window from a StreamDecoder and keeps its middle samples, as the server's
   * CodecModel.decodeWindows does: a chunk with `carry` runs with the stream's state and replaces
   * it; a tail window answers its stream's `final` samples once every earlier chunk has run.
   */
  run(w: DecodeWindow): Promise<Float32Array> {
    const result = this.queue.then(() => this.runNow(w));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runNow(w: DecodeWindow): Promise<Float32Array> {
    if ((w.carry !== undefined) !== this.stateful) {
      throw new DecoderError('invalid_argument', this.stateful ? 'the streaming decoder needs stateful chunks' : 'stateful chunks need the streaming decoder');
    }
    if (w.tail) {
      const pcm = tailAudio(w).slice();
      this.stats.samples += pcm.length;
      return pcm;
    }
    const started = performance.now();
    const audio = w.carry ? await this.step(w.tokens, w.carry) : await this.window(w.tokens);
    const kept = audio.slice(w.keepFrom, w.keepFrom + w.keepCount);
    this.stats.runs++;
    this.stats.runMs += performance.now() - started;
    this.stats.samples += kept.length;
    return kept;
  }

  private async window(tokens: TokenBlock): Promise<Float32Array> {
    const { input, output } = this.manifest.decoder;
    const out = await this.session.run({ [input.name]: this.codesTensor(tokens) as never });
    return this.checked(out, output.name, tokens.numFrames * this.manifest.hopLength);
  }

  /** One chunk through the streaming decoder: audio it completes; `carry` gets the next state and `final`. */
  private async step(tokens: TokenBlock, carry: StreamCarry): Promise<Float32Array> {
    const spec = this.manifest.decoder.streaming!;
    if (tokens.numFrames % spec.chunkMultiple !== 0) throw new DecoderError('invalid_argument', `chunk of ${tokens.numFrames} frames is not a multiple of ${spec.chunkMultiple}`);
    const out = await this.session.run({
      [spec.input.name]: this.codesTensor(tokens) as never,
      [spec.stateInput.name]: new this.ort.Tensor('float32', carry.value, [1, spec.stateSize]) as never,
    });
    const audio = this.checked(out, spec.output.name, tokens.numFrames * this.manifest.hopLength);
    const final = this.checked(out, spec.finalOutput.name, spec.delaySamples);
    const next = this.checked(out, spec.stateOutput.name, spec.stateSize);
    [carry.value, carry.final] = [next.slice(), final.slice()];
    return audio;
  }

  private codesTensor({ numCodebooks: k, numFrames: t, codes }: TokenBlock): unknown {
    const data = new BigInt64Array(codes.length);
    for (let i = 0; i < codes.length; i++) data[i] = BigInt(codes[i]);
    return new this.ort.Tensor('int64', data, [1, k, t]);
  }

  /** An output's data after checking its shape is [1, n]. */
  private checked(out: Record<string, OrtOutput>, name: string, n: number): Float32Array {
    const t = out[name];
    if (t.dims[0] !== 1 || t.dims[1] !== n) throw new DecoderError('model_broken', `decoder output ${name} has shape [${t.dims}], expected [1, ${n}]`);
    return t.data as Float32Array;
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
  /**
   * Frames per steady-state chunk (default 6 = 80 ms at 75 Hz); with the streaming decoder a whole
   * number of its `chunkMultiple`.
   */
  chunkFrames?: number;
  /**
   * Decode every frame whose lookahead has arrived after each packet (default true: lowest
   * latency, chunks of varying length); false waits for whole chunks, as a server stream does.
   */
  eager?: boolean;
}

/**
 * One publisher's token stream -> audio, in order. Frame indices place audio in time; a gap
 * (packets dropped for a slow listener) ends the current run (its tail is decoded as a stream
 * end), is filled with silence, and decoding restarts at the new frame, as a new stream would
 * (the streaming decoder from a zero state).
 */
export class TokenStreamDecoder {
  private dec: StreamDecoder | undefined;
  private segmentStart = 0;
  private expected = 0;
  private tail: Promise<unknown> = Promise.resolve();
  /** Gaps seen and frames they lost. */
  gaps = 0;
  framesLost = 0;

  constructor(private readonly decoder: LocalDecoder, private readonly opts: TokenStreamDecoderOptions) {
    const multiple = decoder.manifest.decoder.streaming?.chunkMultiple ?? 1;
    if (decoder.stateful && this.chunkFrames % multiple !== 0) {
      throw new DecoderError('invalid_argument', `chunkFrames ${this.chunkFrames} is not a multiple of the streaming decoder's ${multiple}-frame chunk`);
    }
  }

  private get chunkFrames(): number {
    return this.opts.chunkFrames ?? 6;
  }

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
      // a fresh StreamDecoder: in stateful mode a new carry, from the zero state a new stream starts with
      this.dec = new StreamDecoder(this.decoder.manifest, { chunkFrames: this.chunkFrames, numCodebooks: this.opts.numCodebooks, stateful: this.decoder.stateful });
      this.segmentStart = first;
    }
    const windows = this.dec.push(block);
    if (this.opts.eager ?? true) windows.push(...this.dec.flush());
    this.expected = first + block.numFrames;
    parts.push(...this.runAll(windows));
    return this.ordered(parts);
  }

  /** The stream ended: decodes the frames still waiting for lookahead (stateful: the stream's `final` samples). */
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
 * Fetches the model's manifest and decoder from the server: the stateful streaming decoder when the
 * manifest has `decoder.streaming` (decoder_stream.onnx, plus decoder.onnx for the weights it
 * references), else the windowed decoder.onnx. Graphs are fetched by content hash through `cache`,
 * checked against that hash where WebCrypto exists, and loaded into `ort`. `fromCache`: every graph
 * came from the cache.
 */
export async function loadDecoder(opts: LoadDecoderOptions): Promise<LocalDecoder & { fromCache: boolean }> {
  const get = opts.fetch ?? fetch;
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  const base = `${opts.baseUrl.replace(/\/$/, '')}/v1/models/${encodeURIComponent(opts.model)}`;
  const manifest = (await fetchOk(get, `${base}/manifest.json`, headers).then((r) => r.json())) as ModelManifest;
  const graph = async (route: string, sha: string): Promise<{ bytes: Uint8Array; fromCache: boolean }> => {
    const url = `${base}/${route}?sha256=${sha}`;
    const cached = await opts.cache?.get(url);
    if (cached && (await hashMatches(cached, sha))) return { bytes: cached, fromCache: true };
    if (cached) await opts.cache?.delete(url); // a damaged cache entry: fetch again
    const bytes = new Uint8Array(await (await fetchOk(get, url, headers)).arrayBuffer());
    if (!(await hashMatches(bytes, sha))) throw new DecoderError('model_broken', `${route} of "${opts.model}" does not match its sha256 ${sha}`);
    await opts.cache?.put(url, bytes);
    return { bytes, fromCache: false };
  };
  const { streaming } = manifest.decoder;
  const [windowed, step] = await Promise.all([graph('decoder.onnx', manifest.decoder.sha256), streaming && graph('decoder_stream.onnx', streaming.sha256)]);
  const graphs: DecoderGraph = step ? { streaming: step.bytes, weights: windowed.bytes } : { windowed: windowed.bytes };
  const decoder = await LocalDecoder.create(opts.ort, manifest, graphs, opts.sessionOptions);
  return Object.assign(decoder, { fromCache: windowed.fromCache && (step?.fromCache ?? true) });
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
