import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Redis, type ChainableCommander } from 'ioredis';
import { encodeRoomPacket, type PublisherInfo } from '../../protocol/rooms.js';
import { ProtocolError } from '../../protocol/errors.js';
import { LocalSlot, type PublisherDescription, type PublisherSlot, type RoomRelay } from './relay.js';
import { SCRIPTS, redisKeys } from './redis-scripts.js';
import type { Room, RoomMetrics, RoomRegistry, RoomSubscriber } from './room.js';

export interface RedisRelayOptions {
  url: string;
  heartbeatMs: number;
  registry: RoomRegistry;
  metrics: RoomMetrics;
  /** Joined listeners at once, all nodes together. */
  maxListeners: number;
  /** This node's room-key grants, shared (RoomAuth.shareable). */
  grants: readonly string[];
  /** Every live node's grants, after each heartbeat. */
  onGrants(all: string[]): void;
  log: FastifyBaseLogger;
}

/** Redis could not be reached when the server started. */
export class RelayStartError extends Error {
  override name = 'RelayStartError';
}

/** A room whose listeners are on this node: its channel is subscribed, its remote publishers mirrored. */
interface Follow {
  room: Room;
  /** Publishers of other nodes: number -> node id. */
  remote: Map<number, string>;
  /** Channel messages that arrive while the room's state is read; applied after it. */
  queue: Buffer[] | undefined;
  ready: Promise<void>;
}

type ScriptCalls<R> = Record<keyof typeof SCRIPTS, (...args: (string | number)[]) => R>;
type Scripted = Redis & ScriptCalls<Promise<unknown>>;

const NODE_ID_BYTES = 8;
/** First byte of a channel message: a relayed kind-16 frame (then the origin node id), else JSON. */
const PACKET = 0x50;

/**
 * Rooms across nodes, as LiveKit does it: a publisher lives on the node its connection reached;
 * its packets go out once on the room's Redis channel; every node with listeners in the room
 * subscribes and fans out to its own listeners (the same Room code as a single node). Publisher
 * slots and numbers, the listener limit and room keys are held in Redis (redis-scripts.ts), under
 * keys that expire unless live nodes refresh them. A node whose heartbeat stops for 3 periods is
 * dead: the next sweep by any node in its rooms ends its publishers with `publisher_left`.
 */
export class RedisRelay implements RoomRelay {
  readonly node = randomBytes(NODE_ID_BYTES).toString('hex');
  private readonly cmd: Scripted;
  private readonly sub: Redis;
  private readonly follows = new Map<string, Follow>();
  private readonly packetPrefix: Buffer;
  /** Listener slots this node holds in Redis, counting those being asked for. */
  private listenerSlots = 0;
  private timer: NodeJS.Timeout | undefined;
  private reachable = true;
  private lastError: Error | undefined;
  private readonly ttlMs: number;

  static async connect(opts: RedisRelayOptions): Promise<RedisRelay> {
    const relay = new RedisRelay(opts);
    try {
      await Promise.all([relay.cmd.connect(), relay.sub.connect()]);
      await relay.heartbeat();
    } catch (e) {
      relay.cmd.disconnect();
      relay.sub.disconnect();
      throw new RelayStartError(`cannot use Redis at ${redactUrl(opts.url)} for rooms: ${(relay.lastError ?? (e as Error)).message}`);
    }
    relay.timer = setInterval(() => void relay.heartbeat().catch((e) => relay.unreachable(e)), opts.heartbeatMs).unref();
    opts.log.info({ node: relay.node, redis: redactUrl(opts.url) }, 'rooms are shared through Redis');
    return relay;
  }

  private constructor(private readonly opts: RedisRelayOptions) {
    this.ttlMs = 3 * opts.heartbeatMs;
    const options = { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 2, retryStrategy: (n: number) => Math.min(n * 200, 2000) };
    this.cmd = new Redis(opts.url, options) as Scripted;
    for (const [name, s] of Object.entries(SCRIPTS)) this.cmd.defineCommand(name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
    this.sub = new Redis(opts.url, options);
    for (const c of [this.cmd, this.sub]) c.on('error', (e: Error) => this.unreachable(e));
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel.toString(), message));
    // ioredis subscribes again after a reconnect; what was published meanwhile is lost: catch up
    let connections = 0;
    this.sub.on('ready', () => {
      if (connections++ === 0) return;
      for (const f of this.follows.values()) if (!f.queue) this.reconcile(f).catch((e: Error) => this.unreachable(e));
    });
    this.packetPrefix = Buffer.concat([Buffer.from([PACKET]), Buffer.from(this.node, 'latin1')]);
  }

  async reservePublisher(name: string, maxPublishers: number): Promise<PublisherSlot> {
    const room = this.opts.registry.get(name);
    room.reserved++; // keeps the room here while Redis answers
    let publisher: number;
    try {
      publisher = Number(await this.cmd.roomReserve(...redisKeys.room(name), redisKeys.nodePrefix, redisKeys.channel(name), this.node, maxPublishers, this.ttlMs));
    } catch (e) {
      this.unreserve(room);
      throw unavailable(e);
    }
    if (publisher < 0) {
      this.unreserve(room);
      throw new ProtocolError('too_many_streams', `room "${name}" already has ${maxPublishers} publishers`);
    }
    return new RedisSlot(room, this.opts.registry, publisher, this);
  }

  async join(name: string): Promise<Room> {
    const room = this.opts.registry.get(name);
    room.joining++; // keeps the room here while Redis answers
    this.listenerSlots++;
    let admitted = false;
    try {
      admitted = Number(await this.cmd.listenerAdmit(redisKeys.listeners, redisKeys.nodePrefix, this.node, this.opts.maxListeners, this.ttlMs)) >= 0;
      if (!admitted) throw new ProtocolError('too_many_streams', `all ${this.opts.maxListeners} listener slots of the cluster are in use; try later`);
      await this.follow(room).ready;
      room.joining--;
      return room;
    } catch (e) {
      room.joining--;
      this.releaseListener(admitted);
      this.unfollowIfUnused(room);
      throw unavailable(e);
    }
  }

  leave(room: Room, subscriber: RoomSubscriber): void {
    room.subscribers.delete(subscriber);
    this.releaseListener(true);
    this.unfollowIfUnused(room);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const f of [...this.follows.values()]) this.unfollow(f);
    try {
      await this.cmd.multi().del(redisKeys.node(this.node), redisKeys.grants(this.node)).srem(redisKeys.nodes, this.node).hdel(redisKeys.listeners, this.node).exec();
    } catch {
      // the keys expire on their own
    }
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  /** A publisher of this node started: other nodes add it to the room. */
  announce(room: Room, info: PublisherInfo): void {
    const [pubs] = redisKeys.room(room.name);
    this.cmd.hset(pubs, info.publisher, JSON.stringify({ node: this.node, info })).catch((e) => this.unreachable(e));
    this.cmd.publish(redisKeys.channel(room.name), JSON.stringify({ type: 'publisher_joined', publisher: info, node: this.node })).catch((e) => this.unreachable(e));
  }

  /** One kind-16 frame of a publisher of this node, for the room's listeners on other nodes. */
  forward(room: Room, publisher: number, frame: Uint8Array, nextFrame: number): void {
    const [, next] = redisKeys.room(room.name);
    // the timeline first: a node reading the room's state then skips this packet if it also receives it
    this.cmd.hset(next, publisher, nextFrame).catch((e) => this.unreachable(e));
    this.cmd.publish(redisKeys.channel(room.name), Buffer.concat([this.packetPrefix, frame])).catch((e) => this.unreachable(e));
  }

  /** Frees a publisher slot of this node; `frames` given when it had started (announced as ended). */
  retract(room: Room, publisher: number, frames: number | undefined): void {
    const [pubs, next] = redisKeys.room(room.name);
    this.cmd.roomRelease(pubs, next, redisKeys.channel(room.name), publisher, frames ?? 0, frames === undefined ? 0 : 1).catch((e: Error) => this.unreachable(e));
  }

  unreserve(room: Room): void {
    room.reserved--;
    this.opts.registry.release(room);
  }

  /** Refreshes this node's keys and those of every room it takes part in; ends the publishers of dead nodes. */
  private async heartbeat(): Promise<void> {
    const batch = this.cmd.pipeline() as ChainableCommander & ScriptCalls<unknown>;
    batch.nodeHeartbeat(
      redisKeys.node(this.node), redisKeys.nodes, redisKeys.grants(this.node), redisKeys.listeners,
      this.ttlMs, this.node, redisKeys.nodePrefix, redisKeys.grantsPrefix, this.listenerSlots, ...this.opts.grants,
    );
    for (const name of this.opts.registry.names()) batch.roomRefresh(...redisKeys.room(name), redisKeys.nodePrefix, redisKeys.channel(name), this.ttlMs);
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    this.opts.onGrants(results[0][1] as string[]);
    if (!this.reachable) this.opts.log.warn('Redis reachable again');
    this.reachable = true;
  }

  private follow(room: Room): Follow {
    const f = this.follows.get(room.name);
    if (f) return f;
    const follow: Follow = { room, remote: new Map(), queue: [], ready: Promise.resolve() };
    this.follows.set(room.name, follow);
    follow.ready = this.catchUp(follow);
    follow.ready.catch(() => this.follows.get(room.name) === follow && this.unfollow(follow));
    return follow;
  }

  /** Subscribes first, then reads who publishes and where each one's timeline is. */
  private async catchUp(f: Follow): Promise<void> {
    await this.sub.subscribe(redisKeys.channel(f.room.name));
    await this.reconcile(f);
    const queued = f.queue ?? [];
    f.queue = undefined;
    for (const m of queued) this.apply(f, m);
  }

  /** Makes the room's remote publishers those Redis lists (after a catch-up, or a lost subscription). */
  private async reconcile(f: Follow): Promise<void> {
    const [pubs, next] = redisKeys.room(f.room.name);
    const [[e1, entries], [e2, frames]] = (await this.cmd.multi().hgetall(pubs).hgetall(next).exec()) as [Error | null, Record<string, string>][];
    if (e1 || e2) throw e1 ?? e2;
    const listed = new Set<number>();
    for (const [n, json] of Object.entries(entries)) {
      const { node, info } = JSON.parse(json) as { node: string; info?: PublisherInfo };
      if (!info) continue;
      listed.add(info.publisher);
      this.addRemote(f, info, node, Number(frames[n] ?? 0));
    }
    for (const n of [...f.remote.keys()]) {
      if (listed.has(n)) continue;
      f.remote.delete(n);
      f.room.removePublisher(n); // its end was announced while this node was not subscribed
    }
  }

  private onMessage(channel: string, message: Buffer): void {
    const f = this.follows.get(channel.slice(redisKeys.channel('').length));
    if (!f) return;
    if (f.queue) f.queue.push(message);
    else this.apply(f, message);
  }

  private apply(f: Follow, message: Buffer): void {
    if (message[0] === PACKET) {
      if (message.subarray(1, 1 + 2 * NODE_ID_BYTES).toString('latin1') === this.node) return; // this node's listeners had it directly
      const n = f.room.deliver(message.subarray(1 + 2 * NODE_ID_BYTES));
      if (n > 0) this.opts.metrics.relayed.inc(n);
      return;
    }
    let m: { type: string; publisher: PublisherInfo | number; frames?: number; node?: string };
    try {
      m = JSON.parse(message.toString());
    } catch {
      return this.opts.log.warn({ room: f.room.name }, 'unreadable message on a room channel ignored');
    }
    if (m.type === 'publisher_joined') this.addRemote(f, m.publisher as PublisherInfo, m.node!, 0);
    else if (m.type === 'publisher_left' && f.remote.delete(m.publisher as number)) f.room.removePublisher(m.publisher as number, m.frames);
  }

  private addRemote(f: Follow, info: PublisherInfo, node: string, nextFrame: number): void {
    if (node === this.node || f.room.publishers.has(info.publisher)) return;
    const { publisher, nextFrame: _, ...description } = info;
    f.room.addPublisher(description, publisher).nextFrame = nextFrame;
    f.remote.set(publisher, node);
  }

  private unfollowIfUnused(room: Room): void {
    const f = this.follows.get(room.name);
    if (f && room.subscribers.size === 0 && room.joining === 0) this.unfollow(f);
    this.opts.registry.release(room);
  }

  private unfollow(f: Follow): void {
    this.follows.delete(f.room.name);
    this.sub.unsubscribe(redisKeys.channel(f.room.name)).catch((e) => this.unreachable(e));
    for (const n of f.remote.keys()) f.room.publishers.delete(n); // nobody on this node listens any more
    f.remote.clear();
    this.opts.registry.release(f.room);
  }

  private releaseListener(heldInRedis: boolean): void {
    this.listenerSlots--;
    if (heldInRedis) this.cmd.hincrby(redisKeys.listeners, this.node, -1).catch((e) => this.unreachable(e));
  }

  private unreachable(e: Error): void {
    this.lastError = e;
    if (this.reachable) this.opts.log.warn({ err: e.message }, 'Redis unreachable: rooms on other nodes are cut off from this one');
    this.reachable = false;
  }
}

/** A publisher of this node: its own listeners get packets directly, other nodes through the channel. */
class RedisSlot extends LocalSlot {
  constructor(room: Room, registry: RoomRegistry, number: number, private readonly relay: RedisRelay) {
    super(room, registry, number);
  }

  override start(info: PublisherDescription): PublisherInfo {
    const full = super.start(info);
    this.relay.announce(this.room, full);
    return full;
  }

  override packet(bytes: Uint8Array): number {
    if (this.publisher === undefined) return 0;
    const frame = encodeRoomPacket(this.publisher, bytes);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // other nodes first: one write to Redis, then this node's own fan-out (many sends)
    this.relay.forward(this.room, this.publisher, frame, dv.getUint32(8, true) + dv.getUint32(12, true));
    return this.room.deliver(frame);
  }

  override end(): void {
    const frames = this.publisher === undefined ? undefined : this.room.publishers.get(this.publisher)?.nextFrame;
    super.end();
    this.relay.retract(this.room, this.number!, frames);
  }
}

function unavailable(e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return e;
  return new ProtocolError('overloaded', `rooms are unavailable on this node (Redis: ${(e as Error).message}); try another node`);
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
