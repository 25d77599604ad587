import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CodecError } from './pure/errors.js';
import { CodecModel } from './model.js';
import type { RuntimeOptions } from './runtime.js';
import { assertTokMatchesModel, type TokModelIdentity } from './tok/model-check.js';
import type { TokHeader } from './tok/types.js';

export interface BrokenModel {
  dir: string;
  error: string;
}

export interface ModelRegistry {
  /** The current version of each model, by name: what encoding, streams and rooms use. */
  models: Map<string, CodecModel>;
  /** Every loaded model folder, current and older versions: a .tok file is decoded by the one with its hash. */
  versions: CodecModel[];
  broken: BrokenModel[];
}

/** A .tok file whose model (by hash) is not loaded: no other model may decode its codes. */
export class TokModelNotLoadedError extends CodecError {
  readonly modelName: string;
  readonly modelSha256: string;
  constructor(header: Pick<TokHeader, 'modelName' | 'modelSha256'>, loaded: CodecModel[]) {
    const have = loaded.map((m) => `${m.name} ${m.manifest.version} (sha256 ${m.hash})`).join(', ') || 'none';
    super(
      'model_not_found',
      `token file was written by model "${header.modelName}" with sha256 ${header.modelSha256}, and no loaded model has that hash ` +
        `(loaded: ${have}); keep that version's folder (e.g. models/${header.modelName}-<version>) to decode it`,
    );
    this.name = 'TokModelNotLoadedError';
    this.modelName = header.modelName;
    this.modelSha256 = header.modelSha256;
  }
}

/**
 * Loads every folder under `root` that holds a manifest.json. A folder is named after its model
 * (`default`), or after the model and version (`default-1.0.0`) to keep an older version loadable
 * for the token files it wrote; a second folder with a version or graphs a model already has is
 * refused. A broken one is reported and skipped: one bad model must not take the others down.
 */
export async function discoverModels(root: string, opts: RuntimeOptions = {}): Promise<ModelRegistry> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const versions: CodecModel[] = [];
  const broken: BrokenModel[] = [];
  const folderOf = new Map<CodecModel, string>();
  let entries: string[];
  try {
    entries = (await readdir(root)).sort();
  } catch (e) {
    throw new CodecError('model_not_found', `cannot read the models folder ${root}: ${(e as Error).message}`);
  }
  for (const name of entries) {
    const dir = join(root, name);
    const isModel = await stat(join(dir, 'manifest.json')).then((s) => s.isFile(), () => false);
    if (!isModel) continue;
    try {
      const model = await CodecModel.load(dir, opts);
      const versioned = `${model.name}-${model.manifest.version}`;
      if (name !== model.name && name !== versioned) {
        await model.release();
        throw new Error(`manifest name "${model.name}" version "${model.manifest.version}" fits folder "${model.name}" or "${versioned}", not "${name}"`);
      }
      const twin = versions.find((m) => m.name === model.name && (m.hash === model.hash || m.manifest.version === model.manifest.version));
      if (twin) {
        await model.release();
        throw new Error(`same model ${twin.hash === model.hash ? 'graphs' : 'version'} as folder ${folderOf.get(twin)}`);
      }
      versions.push(model);
      folderOf.set(model, name);
      log(`model ${model.name} ${model.manifest.version}: ${model.provider.toUpperCase()} execution provider${model.fallbackReason ? ` (fallback: ${model.fallbackReason})` : ''}`);
    } catch (e) {
      const error = (e as Error).message;
      broken.push({ dir, error });
      log(`model folder ${dir} skipped: ${error}`);
    }
  }
  const models = new Map<string, CodecModel>();
  // The current version of a name: the folder named after it, else the highest version.
  for (const model of [...versions].sort((a, b) => compareVersions(a.manifest.version, b.manifest.version))) {
    const held = models.get(model.name);
    if (!held || folderOf.get(held) !== held.name) models.set(model.name, model);
  }
  return { models, versions: [...models.values(), ...versions.filter((m) => models.get(m.name) !== m)], broken };
}

/** Orders dotted versions numerically part by part ("1.10.0" after "1.9.2"); other text compares as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const [x, y] = [pa[i] ?? '', pb[i] ?? ''];
    const d = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The model that decodes a .tok file: the loaded version whose hash the file names. `wanted`, when
 * given, must be that model's name. Throws TokModelNotLoadedError when no loaded model has the
 * hash, TokModelMismatchError when `wanted` names another model, and model_not_found when no model
 * is called `wanted`.
 */
export function modelForTok(registry: Pick<ModelRegistry, 'models' | 'versions'>, header: TokHeader, wanted?: string): CodecModel {
  const named = wanted === undefined ? undefined : registry.models.get(wanted);
  if (wanted !== undefined && !named) throw new CodecError('model_not_found', `no model "${wanted}" (loaded: ${[...registry.models.keys()].join(', ') || 'none'})`);
  // Models of other names may share graphs (and so the hash): prefer the name asked for, then the file's.
  const withHash = registry.versions.filter((m) => m.hash === header.modelSha256);
  const byHash = withHash.find((m) => m.name === (wanted ?? header.modelName)) ?? withHash[0];
  if (!byHash) throw new TokModelNotLoadedError(header, registry.versions);
  if (named && byHash.name !== named.name) assertTokMatchesModel(header, tokIdentity(named));
  assertTokMatchesModel(header, tokIdentity(byHash));
  return byHash;
}

/** What a .tok header is checked against. */
export function tokIdentity(model: CodecModel): TokModelIdentity {
  const m = model.manifest;
  return { name: m.name, sha256: model.hash, sampleRate: m.sampleRate, hopLength: m.hopLength, codebookSize: m.codebookSize, numCodebooks: m.numCodebooks };
}
