import { discoverModels } from '../codec/index.js';
import { EXIT } from './exit.js';
import { modelsDir, parseCommandArgs, printUsage, runtimeOptions } from './model-options.js';

/** `tokstream models [--json]`: every model that loads, and every folder that does not and why. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { json: { type: 'boolean' } });
  if (values.help) return printUsage();
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
