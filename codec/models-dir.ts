import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The models/ folder of the installed package (next to its package.json), found from this module's
 * own location, so the CLI and the server work from any current folder (source or dist/ build).
 */
export function packageModelsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return join(process.cwd(), 'models');
    dir = up;
  }
  return join(dir, 'models');
}
