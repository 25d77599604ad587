import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelHash, type ModelManifest } from '../../codec/manifest.js';
import { DEFAULT_MODEL_DIR } from './fixtures.js';

const GRAPHS = ['encoder.onnx', 'encoder_stream.onnx', 'decoder.onnx', 'decoder_stream.onnx'];
export const shippedManifest: ModelManifest = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'manifest.json'), 'utf8'));

/** The shipped model as a kept older version: a `default-<version>` folder linking the real files. */
export function olderVersionFolder(root: string): void {
  const dir = join(root, `default-${shippedManifest.version}`);
  mkdirSync(dir);
  for (const f of [...GRAPHS, 'manifest.json']) symlinkSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
}

/**
 * A stand-in for the next version (2.0.0) in the `default` folder: the real graphs, but decoder.onnx
 * carries an extra protobuf field ONNX Runtime skips (field 1000, a note), so its sha256, and with it
 * the model hash, differ while the graph loads and runs the same. Returns the model hash.
 */
export function nextVersionFolder(root: string): string {
  const dir = join(root, 'default');
  mkdirSync(dir);
  for (const f of GRAPHS.filter((g) => g !== 'decoder.onnx')) symlinkSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
  const note = Buffer.from('tokstream test stand-in for the next model version');
  const decoder = Buffer.concat([readFileSync(join(DEFAULT_MODEL_DIR, 'decoder.onnx')), Buffer.from([0xc2, 0x3e, note.length]), note]);
  writeFileSync(join(dir, 'decoder.onnx'), decoder);
  const manifest = structuredClone(shippedManifest);
  manifest.version = '2.0.0';
  manifest.decoder.sha256 = createHash('sha256').update(decoder).digest('hex');
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return modelHash(manifest);
}

/** A models folder with the shipped version kept as `default-<version>` and the 2.0.0 stand-in as `default`. */
export function twoVersionsModelsDir(): { dir: string; nextHash: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tokstream-versions-'));
  olderVersionFolder(dir);
  return { dir, nextHash: nextVersionFolder(dir) };
}
