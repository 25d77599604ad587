import { resolve } from 'node:path';
import { CodecError, discoverModels, type CodecModel, type ModelRegistry, type ProviderChoice, type RuntimeOptions } from '../codec/index.js';
import { packageModelsDir } from '../codec/models-dir.js';
import { EXIT } from './exit.js';
import { USAGE, UsageError, parseOptions } from './usage.js';

/** Options every codec command (encode, decode, info, models) takes. */
const COMMON_OPTIONS = {
  'models-dir': { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  model: { type: 'string', short: 'm' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionTable = Parameters<typeof parseOptions>[1];

/** A codec command's arguments: the common options, its own, and positionals. */
export function parseCommandArgs<T extends OptionTable>(args: string[], options: T): ReturnType<typeof parseOptions<typeof COMMON_OPTIONS & T>> {
  return parseOptions(args, { ...COMMON_OPTIONS, ...options }, true);
}

export function printUsage(): number {
  process.stdout.write(USAGE);
  return EXIT.ok;
}

export function positional(p: string[], n: number, what: string): string {
  if (p.length !== n) throw new UsageError(`expected ${what}`);
  return p[0];
}

interface ModelValues {
  'models-dir'?: string;
  provider?: string;
  threads?: string;
  model?: string;
}

export function runtimeOptions(values: ModelValues): RuntimeOptions {
  const provider = values.provider ?? process.env.TOKSTREAM_PROVIDER ?? 'cpu';
  if (!['cpu', 'cuda', 'auto'].includes(provider)) throw new UsageError(`--provider must be cpu, cuda or auto`);
  const threads = values.threads === undefined ? 0 : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 0) throw new UsageError('--threads must be a non-negative integer');
  // one command, one file: a session thread would only add its start-up (~0.2 s measured) to the wait
  return { provider: provider as ProviderChoice, intraOpThreads: threads, runOn: 'caller', log: () => {} };
}

export function modelsDir(values: ModelValues): string {
  return resolve(values['models-dir'] ?? process.env.TOKSTREAM_MODELS_DIR ?? packageModelsDir());
}

/** Loads the models folder and picks one model (default: "default", or the first that loads), or the one `choose` picks. */
export async function loadModel(values: ModelValues, choose?: (registry: ModelRegistry) => CodecModel): Promise<CodecModel> {
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

function byName(registry: ModelRegistry, values: ModelValues): CodecModel {
  const loaded = [...registry.models.keys()];
  const name = values.model ?? (registry.models.has('default') || loaded.length === 0 ? 'default' : loaded[0]);
  const model = registry.models.get(name);
  if (model) return model;
  // the real reason: the folder of that name failed to load (which file, which provider), or there is none
  const broken = registry.broken.find((b) => b.dir.endsWith(`/${name}`));
  if (broken) throw new CodecError('model_broken', `model folder ${broken.dir}: ${broken.error}`);
  const others = registry.broken.map((b) => ` broken: ${b.dir}: ${b.error};`).join('');
  throw new CodecError('model_not_found', `no model "${name}" in ${modelsDir(values)} (loaded: ${loaded.join(', ') || 'none'};${others || ' no other model folders'})`);
}
