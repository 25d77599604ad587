import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
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
import { TokFormatError, TokWriter, openTok, readTokStream, type TokHeader } from '../codec/tokfile.js';
import type { TokenBlock } from '../codec/types.js';
import { Progress } from './progress.js';

const USAGE = `tokstream — audio <-> codec tokens

Usage:
  tokstream encode <audio> -o <out.tok> [--model M] [--codebooks N]
  tokstream decode <in.tok> -o <out.wav|.flac|.ogg|.mp3> [--model M]
                     (decoded by the loaded model version whose hash the file names)
  tokstream info <in.tok> [--json]
  tokstream models [--json]
  tokstream serve [server options; tokstream serve --help]
  tokstream prep <enqueue|worker|merge|run> ... (tokstream prep --help)

Common options:
  --models-dir DIR   model folders (default: ./models, or $TOKSTREAM_MODELS_DIR)
  --provider P       cpu | cuda | auto (default cpu; auto falls back to CPU with a warning)
  --threads N        ONNX intra-op threads (default: all cores)
`;

/** Exit codes: 0 ok, 1 unexpected, 2 usage, 3 bad input, 4 model problem. */
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
    console.error(`tokstream: ${e.message}\n\n${USAGE}`);
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
  return { provider: provider as ProviderChoice, intraOpThreads: threads, log: () => {} };
}

export function modelsDir(values: Record<string, unknown>): string {
  return resolve((values['models-dir'] as string | undefined) ?? process.env.TOKSTREAM_MODELS_DIR ?? 'models');
}

/** Loads the models folder and picks one model (default: "default", or the only one), or the one `choose` picks. */
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
  const name = (values.model as string | undefined) ?? (registry.models.has('default') ? 'default' : [...registry.models.keys()][0]);
  const model = name === undefined ? undefined : registry.models.get(name);
  if (model) return model;
  const broken = registry.broken.find((b) => b.dir.endsWith(`/${name}`));
  throw new CodecError(broken ? 'model_broken' : 'model_not_found', broken ? broken.error : `no model "${name}" in ${modelsDir(values)} (have: ${[...registry.models.keys()].join(', ') || 'none'})`);
}

function positional(p: string[], n: number, what: string): string {
  if (p.length !== n) throw new UsageError(`expected ${what}`);
  return p[0];
}

/** Writes to `path` through a temporary file renamed at the end: no half-written output on failure. */
async function atomicOutput<T>(path: string, body: (write: (b: Uint8Array) => Promise<void>) => Promise<T>): Promise<T> {
  const tmp = `${path}.partial-${process.pid}`;
  const out = createWriteStream(tmp);
  const write = async (b: Uint8Array) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  try {
    const result = await body(write);
    out.end();
    await once(out, 'finish');
    await rename(tmp, path);
    return result;
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}

async function encodeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, codebooks: { type: 'string', short: 'n' } });
  if (values.help) return help();
  const input = positional(positionals, 1, 'one input audio file');
  if (!values.output) throw new UsageError('missing -o <out.tok>');
  const model = await loadModel(values);
  const m = model.manifest;
  const codebooks = model.checkCodebooks(values.codebooks === undefined ? undefined : Number(values.codebooks));
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
  const frames = await atomicOutput(values.output, async (write) => {
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
      write,
    );
    for await (const block of model.encodeStream(counted(), { codebooks })) await writer.write(block);
    await writer.finish({ originalLength: audio.sourceSamples() });
    return writer.totalFrames;
  });
  progress.done();
  await model.release();
  console.error(`encoded ${(samples / m.sampleRate).toFixed(2)} s -> ${frames} frames x ${codebooks} codebooks (${(bitrate(m, codebooks) / 1000).toFixed(2)} kbps) -> ${values.output}`);
  return EXIT.ok;
}

async function decodeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, format: { type: 'string' } });
  if (values.help) return help();
  const input = positional(positionals, 1, 'one input .tok file');
  if (!values.output) throw new UsageError('missing -o <out.wav>');
  const format = (values.format ?? extname(values.output).slice(1).toLowerCase()) as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new UsageError(`output format "${format}" not one of ${OUTPUT_FORMATS.join(', ')}`);
  // The footer says how long the original was, so the output can be trimmed to it while streaming.
  const file = await openTok(input, { allowTruncated: false });
  const { header } = file;
  const total = file.originalLength === null ? undefined : Math.round((file.originalLength * header.sampleRate) / header.originalSampleRate);
  await file.close();
  const model = await loadModel(values, (registry) => modelForTok(registry, header, values.model as string | undefined));
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
  await atomicOutput(values.output, async (write) => {
    for await (const bytes of encodeAudioStream(pcm(), { format, sampleRate: header.sampleRate, totalSamples: total })) await write(bytes);
  });
  progress.done();
  await model.release();
  console.error(`decoded ${(written / header.sampleRate).toFixed(2)} s at ${header.sampleRate} Hz with model ${model.name} ${model.manifest.version} -> ${values.output}`);
  return EXIT.ok;
}

async function infoCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (values.help) return help();
  const input = positional(positionals, 1, 'one input .tok file');
  const file = await openTok(input, { allowTruncated: true });
  const h: TokHeader = file.header;
  const info = {
    file: input,
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
    problem: file.problem?.message,
    metadata: h.metadata,
  };
  await file.close();
  if (values.json) console.log(JSON.stringify(info, null, 2));
  else for (const [k, v] of Object.entries(info)) if (v !== undefined) console.log(`${k.padEnd(19)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return file.complete ? EXIT.ok : EXIT.input;
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
