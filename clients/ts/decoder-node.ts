/**
 * Client-side decoding in Node: the model's decoder graph from the server (the stateful streaming
 * decoder when it has one), cached in a folder by its sha256, run by onnxruntime-node (imported
 * only here, so browser bundles never see it).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDecoder, type GraphCache, type LoadDecoderOptions, type LocalDecoder, type OrtLike } from './decoder.js';

export class FolderGraphCache implements GraphCache {
  constructor(private readonly dir: string) {}

  private path(key: string): string {
    const sha = /sha256=([0-9a-f]{64})/.exec(key)?.[1];
    if (!sha) throw new Error(`cache key without a sha256: ${key}`);
    return join(this.dir, `${sha}.onnx`);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch {
      return undefined;
    }
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.path(key)}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, this.path(key)); // readers never see a half-written graph
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}

export interface NodeDecoderOptions extends Omit<LoadDecoderOptions, 'ort' | 'cache'> {
  /** Folder for downloaded graphs (default: no cache). */
  cacheDir?: string;
  /** onnxruntime intra-op threads (default 1: a listener decodes one stream). */
  threads?: number;
}

export async function loadNodeDecoder(opts: NodeDecoderOptions): Promise<LocalDecoder & { fromCache: boolean }> {
  const ort = (await import('onnxruntime-node')) as unknown as OrtLike;
  return loadDecoder({
    ...opts,
    ort,
    cache: opts.cacheDir ? new FolderGraphCache(opts.cacheDir) : undefined,
    sessionOptions: { intraOpNumThreads: opts.threads ?? 1, ...opts.sessionOptions },
  });
}
