import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ROOM_NAME } from '../../protocol/rooms.js';
import { presentedKey, type AuthFailure, type Authenticator } from '../auth.js';

export type RoomRole = 'publish' | 'listen';

/** What one connection may do: `all` for API keys (and --no-auth), else per-room roles. */
export interface RoomAccess {
  all: boolean;
  /** room name (or "*") -> roles; publish implies listen */
  rooms: Map<string, Set<RoomRole>>;
}

const KEY = /^[A-Za-z0-9._~-]{8,256}$/;
const SHARED_GRANT = /^[0-9a-f]{64}:(publish|listen):[^:]+$/;

/** Why a `--room-key` entry is malformed, or undefined when it is fine (the settings table checks each entry at start-up). */
export function roomKeyProblem(entry: string): string | undefined {
  const parts = entry.split(':');
  if (parts.length !== 3) return `room key "${redact(entry)}" must be <key>:<publish|listen>:<room|*>`;
  const [key, role, room] = parts;
  if (!KEY.test(key)) return 'room keys must be 8-256 characters of A-Z a-z 0-9 . _ ~ -';
  if (role !== 'publish' && role !== 'listen') return `room key role must be "publish" or "listen", got "${role}"`;
  if (room !== '*' && !ROOM_NAME.test(room)) return `room name "${room}" must be 1-64 of [A-Za-z0-9._-]`;
  return undefined;
}

/**
 * Room-scoped authentication: an API key (or --no-auth) may publish and listen anywhere; a room
 * key (`--room-key <key>:<role>:<room>`, repeatable; one key may carry several grants) only where
 * its grants say. Origin rules are the Authenticator's.
 */
export class RoomAuth {
  private grants: { digest: Buffer; role: RoomRole; room: string }[];
  /** This node's own grants as `<sha256 hex of the key>:<role>:<room>`: what rooms across nodes share. */
  readonly shareable: string[];

  constructor(private readonly auth: Authenticator, roomKeys: string[]) {
    this.shareable = roomKeys.map((entry) => {
      const [key, role, room] = entry.split(':');
      return `${digest(key).toString('hex')}:${role}:${room}`;
    });
    this.grants = [];
    this.useShared(this.shareable);
  }

  /** Replaces the grants by those every node of a cluster holds (their union, this node's included). */
  useShared(entries: readonly string[]): void {
    const wellFormed = entries.filter((e) => SHARED_GRANT.test(e) && (e.endsWith(':*') || ROOM_NAME.test(e.slice(e.lastIndexOf(':') + 1))));
    this.grants = [...new Set([...this.shareable, ...wellFormed])].map((entry) => {
      const [hex, role, room] = entry.split(':');
      return { digest: Buffer.from(hex, 'hex'), role: role as RoomRole, room };
    });
  }

  check(headers: IncomingHttpHeaders, query: URLSearchParams): { access: RoomAccess } | { failure: AuthFailure } {
    const origin = this.auth.checkOrigin(headers);
    if (origin) return { failure: origin };
    if (this.auth.check(headers, query) === null) return { access: { all: true, rooms: new Map() } };
    const key = presentedKey(headers, query);
    const rooms = new Map<string, Set<RoomRole>>();
    if (key !== undefined) {
      const d = digest(key);
      // every grant is compared, matching or not, so timing does not tell how many grants exist
      for (const g of this.grants) {
        if (!timingSafeEqual(g.digest, d)) continue;
        const roles = rooms.get(g.room) ?? new Set<RoomRole>();
        roles.add(g.role);
        rooms.set(g.room, roles);
      }
    }
    if (rooms.size === 0) return { failure: { code: 'unauthorized', message: key === undefined ? 'API key or room key required' : 'key not accepted' } };
    return { access: { all: false, rooms } };
  }
}

export function mayAccess(access: RoomAccess, room: string, role: RoomRole): boolean {
  if (access.all) return true;
  for (const name of [room, '*']) {
    const roles = access.rooms.get(name);
    if (roles && (roles.has(role) || (role === 'listen' && roles.has('publish')))) return true;
  }
  return false;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function redact(entry: string): string {
  return entry.replace(/^[^:]*/, '<key>');
}
