/** Browser cache for decoder graphs: the Cache API (persistent, per origin). Keys are immutable URLs. */
import type { GraphCache } from './decoder.js';

export class CacheApiGraphCache implements GraphCache {
  constructor(private readonly name = 'tokstream-decoders-v1') {}

  /** Undefined where the Cache API is missing (insecure origins): callers then fetch every time. */
  static available(): boolean {
    return typeof caches !== 'undefined';
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const hit = await (await caches.open(this.name)).match(key);
    return hit ? new Uint8Array(await hit.arrayBuffer()) : undefined;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const body = bytes.slice().buffer; // a copy: the caller keeps using `bytes`
    await (await caches.open(this.name)).put(key, new Response(body, { headers: { 'content-type': 'application/octet-stream' } }));
  }

  async delete(key: string): Promise<void> {
    await (await caches.open(this.name)).delete(key);
  }
}
