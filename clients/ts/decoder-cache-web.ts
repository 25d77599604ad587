/**
 * Browser cache for decoder graphs: the Cache API (persistent, per origin). Keys are immutable URLs,
 * `<server>/v1/models/<model>/<graph>?sha256=<hash>`.
 */
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

  /** Stores a graph and drops older versions of it (another hash): nothing else would remove them from the user's storage. */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    const cache = await caches.open(this.name);
    const body = bytes.slice().buffer; // a copy: the caller keeps using `bytes`
    const url = new URL(key, globalThis.location?.href);
    await cache.put(url.href, new Response(body, { headers: { 'content-type': 'application/octet-stream' } }));
    const graph = url.origin + url.pathname;
    for (const old of await cache.keys()) {
      const o = new URL(old.url);
      if (old.url !== url.href && o.origin + o.pathname === graph) await cache.delete(old);
    }
  }

  async delete(key: string): Promise<void> {
    await (await caches.open(this.name)).delete(key);
  }
}
