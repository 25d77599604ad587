import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CodecError } from './errors.js';
import { CodecModel } from './model.js';
import type { RuntimeOptions } from './runtime.js';

export interface BrokenModel {
  dir: string;
  error: string;
}

export interface ModelRegistry {
  models: Map<string, CodecModel>;
  broken: BrokenModel[];
}

/**
 * Loads every folder under `root` that holds a manifest.json. A broken one is
 * reported and skipped: one bad model must not take the others down.
 */
export async function discoverModels(root: string, opts: RuntimeOptions = {}): Promise<ModelRegistry> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const models = new Map<string, CodecModel>();
  const broken: BrokenModel[] = [];
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
      if (model.name !== name) throw new Error(`manifest name "${model.name}" differs from folder name "${name}"`);
      models.set(model.name, model);
      log(`model ${model.name} ${model.manifest.version}: ${model.provider.toUpperCase()} execution provider${model.fallbackReason ? ` (fallback: ${model.fallbackReason})` : ''}`);
    } catch (e) {
      const error = (e as Error).message;
      broken.push({ dir, error });
      log(`model folder ${dir} skipped: ${error}`);
    }
  }
  return { models, broken };
}
