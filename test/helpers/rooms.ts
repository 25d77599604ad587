import type { TokenPacket } from '../../protocol/stream.js';
import type { RoomEvent, RoomSubscription } from '../../clients/ts/room-client.js';

/** Collects a subscription's events in the background. */
export function collect(sub: RoomSubscription): { events: RoomEvent[]; done: Promise<void> } {
  const events: RoomEvent[] = [];
  const done = (async () => {
    for await (const e of sub) events.push(e);
  })();
  return { events, done };
}

/** Collects the token packets a room publisher receives back for its own audio. */
export function ownPackets(pub: AsyncIterable<TokenPacket>): { packets: TokenPacket[]; done: Promise<void> } {
  const packets: TokenPacket[] = [];
  const done = (async () => {
    for await (const p of pub) packets.push(p);
  })();
  return { packets, done };
}

export async function until(pred: () => boolean, ms = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
