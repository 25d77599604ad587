import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CodecError,
  bitrate,
  discoverModels,
  frameRate,
  modelForTok,
  openAudio,
  type CodecModel,
  type ModelRegistry,
  type ProviderChoice,
  type RuntimeOptions,
} from '../codec/index.js';
import { OUTPUT_FORMATS, encodeAudioStream, type OutputFormat } from '../codec/audio-output.js';
import { packageModelsDir } from '../codec/models-dir.js';
import { TokFormatError, TokWriter, openTok, readTokStream, verifyTok, type TokFormatErrorCode, type TokHeader } from '../codec/tokfile.js';
import type { TokenBlock } from '../codec/types.js';
import { Progress } from './progress.js';

const USAGE = `tokstream — audio <-> codec tokens

Usage:
  tokstream encode <audio> -o <out.tok> [--model M] [--codebooks N]
  tokstream decode <in.tok> -o <out.wav|.flac|.ogg|.mp3> [--model M]
                     (decoded by the loaded model version whose hash the file names)
  tokstream info <in.tok> [--json] [--fast]   (--fast: header and index only, chunks not checked)
  tokstream models [--json]
  tokstream serve [server options; tokstream serve --help]
  tokstream prep <enqueue|worker|merge|run> ... (tokstream prep --help)

Common options:
  --models-dir DIR   model folders (default: $TOKSTREAM_MODELS_DIR, else the package's own models/)
  --provider P       cpu | cuda | auto (default cpu; auto falls back to CPU with a warning)
  --threads N        ONNX intra-op threads (default: all cores)
`;

/** Exit codes (README): 0 ok, 1 unexpected (a bug), 2 usage, 3 bad input, 4 model missing or broken. */
const EXIT = { ok: 0, internal: 1, usage: 2, input: 3, model: 4 } as const;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'encode':
        return await encodeCommand(rest);
      case 'decode':
        return await decodeCommand(rest);
      case 'info':
        return await infoCommand(rest);
      case 'models':
        return await modelsCommand(rest);
      case 'serve': {
        const { runServe } = await import('./serve-command.js');
        return await runServe(rest);
      }
      case 'prep': {
        const { runPrep } = await import('../prep/cli.js');
        return await runPrep(rest);
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        console.error(`tokstream: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (e) {
    return reportError(e);
  }
}

function reportError(e: unknown): number {
  if (e instanceof UsageError) {
    console.error(`tokstream: ${e.message} (tokstream --help for usage)`);
    return EXIT.usage;
  }
  if (e instanceof TokFormatError) {
    console.error(`tokstream: invalid token file (${e.code}): ${e.message}`);
    return EXIT.input;
  }
  if (e instanceof CodecError) {
    console.error(`tokstream: ${e.code}: ${e.message}`);
    return e.code === 'model_broken' || e.code === 'model_not_found' ? EXIT.model : EXIT.input;
  }
  console.error(`tokstream: ${(e as Error)?.stack ?? e}`);
  return EXIT.internal;
}

class UsageError extends Error {}

const commonOptions = {
  'models-dir': { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  model: { type: 'string', short: 'm' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function runtimeOptions(values: Record<string, unknown>): RuntimeOptions {
  const provider = (values.provider as string | undefined) ?? process.env.TOKSTREAM_PROVIDER ?? 'cpu';
  if (!['cpu', 'cuda', 'auto'].includes(provider)) throw new UsageError(`--provider must be cpu, cuda or auto`);
  const threads = values.threads === undefined ? 0 : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 0) throw new UsageError('--threads must be a non-negative integer');
  // one command, one file: a session thread would only add its start-up (~0.2 s measured) to the wait
  return { provider: provider as ProviderChoice, intraOpThreads: threads, runOn: 'caller', log: () => {} };
}

export function modelsDir(values: Record<string, unknown>): string {
  return resolve((values['models-dir'] as string | undefined) ?? process.env.TOKSTREAM_MODELS_DIR ?? packageModelsDir());
}

/** Loads the models folder and picks one model (default: "default", or the first that loads), or the one `choose` picks. */
async function loadModel(values: Record<string, unknown>, choose?: (registry: ModelRegistry) => CodecModel): Promise<CodecModel> {
  const registry = await discoverModels(modelsDir(values), runtimeOptions(values));
  const releaseAllBut = async (keep?: CodecModel) => {
    for (const m of registry.versions) if (m !== keep) await m.release();
  };
  let model: CodecModel;
  try {
    model = choose ? choose(registry) : byName(registry, values);
  } catch (e) {
    await releaseAllBut();
    throw e;
  }
  await releaseAllBut(model);
  if (model.provider !== 'cpu' || model.fallbackReason) console.error(`tokstream: model ${model.name} on ${model.provider.toUpperCase()}${model.fallbackReason ? ` (${model.fallbackReason})` : ''}`);
  return model;
}

function byName(registry: ModelRegistry, values: Record<string, unknown>): CodecModel {
  const loaded = [...registry.models.keys()];
  const name = (values.model as string | undefined) ?? (registry.models.has('default') || loaded.length === 0 ? 'default' : loaded[0]);
  const model = registry.models.get(name);
  if (model) return model;
  // the real reason: the folder of that name failed to load (which file, which provider), or there is none
  const broken = registry.broken.find((b) => b.dir.endsWith(`/${name}`));
  if (broken) throw new CodecError('model_broken', `model folder ${broken.dir}: ${broken.error}`);
  const others = registry.broken.map((b) => ` broken: ${b.dir}: ${b.error};`).join('');
  throw new CodecError('model_not_found', `no model "${name}" in ${modelsDir(values)} (loaded: ${loaded.join(', ') || 'none'};${others || ' no other model folders'})`);
}

function positional(p: string[], n: number, what: string): string {
  if (p.length !== n) throw new UsageError(`expected ${what}`);
  return p[0];
}

/** A file that must exist and be a regular file (decode and info inputs). */
async function inputFile(path: string): Promise<string> {
  const st = await stat(path).catch((e: Error) => {
    throw new CodecError('invalid_argument', `cannot read ${path}: ${e.message}`);
  });
  if (!st.isFile()) throw new CodecError('invalid_argument', `${path} is not a regular file`);
  return path;
}

/** An output written through a temporary file renamed at the end: no half-written output on failure. */
interface Output {
  write(bytes: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** Opens the output before any work is done, so a path that cannot be written fails at once (usage error). */
async function openOutput(path: string): Promise<Output> {
  const existing = await stat(path).catch(() => null);
  if (existing?.isDirectory()) throw new UsageError(`-o ${path} is a folder; give a file name`);
  const tmp = `${path}.partial-${process.pid}`;
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'w');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'its folder does not exist' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
    throw new UsageError(`cannot write -o ${path}: ${why}`);
  }
  let closed = false;
  const close = async () => {
    if (!closed) await fh.close();
    closed = true;
  };
  return {
    async write(bytes) {
      for (let off = 0; off < bytes.length; ) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
    },
    async commit() {
      await close();
      await rename(tmp, path);
    },
    async discard() {
      await close().catch(() => {});
      await rm(tmp, { force: true });
    },
  };
}

/** Runs `body` with the output open; commits on success, removes the partial file on any failure. */
async function withOutput<T>(path: string, body: (out: Output) => Promise<T>): Promise<T> {
  const out = await openOutput(path);
  try {
    const result = await body(out);
    await out.commit();
    return result;
  } catch (e) {
    await out.discard();
    throw e;
  }
}

/** --codebooks: an integer 1..the model's count, else a usage error naming the range. */
function codebooksOption(raw: string | undefined, model: CodecModel): number {
  const max = model.manifest.numCodebooks;
  if (raw === undefined) return max;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--codebooks must be an integer from 1 to ${max} for model "${model.name}", got "${raw}"`);
  }
  return n;
}

async function encodeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, codebooks: { type: 'string', short: 'n' } });
  if (values.help) return help();
  const input = positional(positionals, 1, 'one input audio file');
  if (!values.output) throw new UsageError('missing -o <out.tok>');
  const output = values.output;
  return withOutput(output, async (out) => {
    const model = await loadModel(values);
    try {
      const m = model.manifest;
      const codebooks = codebooksOption(values.codebooks, model);
      const audio = await openAudio({ path: input }, { sampleRate: m.sampleRate });
      const progress = new Progress('encode', audio.durationSec);
      let samples = 0;
      async function* counted() {
        for await (const chunk of audio.pcm) {
          samples += chunk.length;
          progress.update(samples / m.sampleRate);
          yield chunk;
        }
      }
      const writer = new TokWriter(
        {
          modelName: m.name,
          modelSha256: model.hash,
          sampleRate: m.sampleRate,
          hopLength: m.hopLength,
          numCodebooks: codebooks,
          codebookSize: m.codebookSize,
          originalSampleRate: audio.sourceRate ?? m.sampleRate,
        },
        (b) => out.write(b),
      );
      for await (const block of model.encodeStream(counted(), { codebooks })) await writer.write(block);
      await writer.finish({ originalLength: audio.sourceSamples() });
      progress.done();
      console.error(`encoded ${(samples / m.sampleRate).toFixed(2)} s -> ${writer.totalFrames} frames x ${codebooks} codebooks (${(bitrate(m, codebooks) / 1000).toFixed(2)} kbps) -> ${output}`);
      return EXIT.ok;
    } finally {
      await model.release();
    }
  });
}

async function decodeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, format: { type: 'string' } });
  if (values.help) return help();
  const input = positional(positionals, 1, 'one input .tok file');
  if (!values.output) throw new UsageError('missing -o <out.wav>');
  const output = values.output;
  const format = (values.format ?? extname(output).slice(1).toLowerCase()) as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new UsageError(`output format "${format}" not one of ${OUTPUT_FORMATS.join(', ')}`);
  await inputFile(input);
  return withOutput(output, async (out) => {
    // every byte is checked before any decoding; the footer says how long the original was
    const { header, originalLength } = await verifyTok(createReadStream(input));
    const total = originalLength === null ? undefined : Math.round((originalLength * header.sampleRate) / header.originalSampleRate);
    const model = await loadModel(values, (registry) => modelForTok(registry, header, values.model as string | undefined));
    try {
      const progress = new Progress('decode', total === undefined ? undefined : total / header.sampleRate);
      let written = 0;
      async function* blocks(): AsyncGenerator<TokenBlock> {
        for await (const ev of readTokStream(createReadStream(input))) if (ev.type === 'tokens') yield ev.tokens;
      }
      async function* pcm(): AsyncGenerator<Float32Array> {
        for await (let chunk of model.decodeStream(blocks())) {
          if (total !== undefined) chunk = chunk.subarray(0, Math.max(0, total - written));
          written += chunk.length;
          progress.update(written / header.sampleRate);
          if (chunk.length) yield chunk;
        }
      }
      for await (const bytes of encodeAudioStream(pcm(), { format, sampleRate: header.sampleRate, totalSamples: total })) await out.write(bytes);
      progress.done();
      console.error(`decoded ${(written / header.sampleRate).toFixed(2)} s at ${header.sampleRate} Hz with model ${model.name} ${model.manifest.version} -> ${output}`);
      return EXIT.ok;
    } finally {
      await model.release();
    }
  });
}

async function infoCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, fast: { type: 'boolean' } });
  if (values.help) return help();
  const input = await inputFile(positional(positionals, 1, 'one input .tok file'));
  const file = values.fast ? await headerAndIndex(input) : await verifyTok(createReadStream(input), { allowDamaged: true });
  const h: TokHeader = file.header;
  const problem = file.problem ? { code: file.problem.code as TokFormatErrorCode, offset: file.problem.offset, message: file.problem.message } : undefined;
  const info = {
    file: input,
    checked: values.fast ? 'header, index and footer (--fast: chunks not read)' : 'every byte',
    version: `${h.version.major}.${h.version.minor}`,
    model: h.modelName,
    modelSha256: h.modelSha256,
    sampleRate: h.sampleRate,
    hopLength: h.hopLength,
    frameRate: h.sampleRate / h.hopLength,
    codebooks: h.numCodebooks,
    codebookSize: h.codebookSize,
    bitsPerCode: h.bitsPerCode,
    frames: file.totalFrames,
    durationSec: file.totalFrames / (h.sampleRate / h.hopLength),
    originalSampleRate: h.originalSampleRate,
    originalLength: file.originalLength,
    complete: file.complete,
    problem,
    metadata: h.metadata,
  };
  if (values.json) console.log(JSON.stringify(info, null, 2));
  else {
    for (const [k, v] of Object.entries(info)) {
      if (v === undefined) continue;
      const text = k === 'problem' && problem ? problem.message : typeof v === 'object' ? JSON.stringify(v) : v;
      console.log(`${k.padEnd(19)} ${text}`);
    }
  }
  return file.complete ? EXIT.ok : EXIT.input;
}

/** --fast: the header, the footer and the index, as a seeking reader sees them; chunks are not read. */
async function headerAndIndex(input: string) {
  const file = await openTok(input, { allowTruncated: true });
  await file.close();
  return file;
}

async function modelsCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' } });
  if (values.help) return help();
  const registry = await discoverModels(modelsDir(values), runtimeOptions(values));
  const models = [...registry.models.values()].map((model) => model.describe());
  // kept for the token files they wrote: decode picks them by the file's model hash
  const olderVersions = registry.versions.filter((m) => registry.models.get(m.name) !== m).map((model) => model.describe());
  if (values.json) console.log(JSON.stringify({ models, olderVersions, broken: registry.broken }, null, 2));
  else {
    for (const m of olderVersions) console.log(`${m.name} ${m.version}  older version, decodes the .tok files it wrote (sha256 ${m.hash})`);
    for (const m of models) {
      console.log(`${m.name} ${m.version}  ${m.sampleRate} Hz, ${m.frameRate} frames/s, ${m.numCodebooks} x ${m.codebookSize} codes, ${m.causal ? 'causal' : 'non-causal'}, ${m.provider.toUpperCase()}${m.fallbackReason ? ` (fallback: ${m.fallbackReason})` : ''}`);
      console.log(`  kbps by codebooks: ${m.bitrates.map((b) => `${b.codebooks}:${b.bitsPerSecond / 1000}`).join(' ')}`);
    }
    for (const b of registry.broken) console.log(`BROKEN ${b.dir}: ${b.error}`);
  }
  for (const m of registry.versions) await m.release();
  return EXIT.ok;
}

function help(): number {
  process.stdout.write(USAGE);
  return EXIT.ok;
}
