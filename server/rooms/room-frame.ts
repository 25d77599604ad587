/**
 * A kind-16 frame on its way to a room's listeners, framed for the wire once. Server-to-client
 * WebSocket frames carry no mask and (permessage-deflate is off) no compression, so every
 * listener's socket gets these same bytes: fan-out costs one socket write per listener, not a
 * WebSocket send each.
 */
export class RoomFrame {
  /** The payload as one final, unmasked binary WebSocket frame (RFC 6455 §5.2). */
  readonly wire: Buffer;
  /** The kind-16 frame itself: the end of `wire`. */
  readonly payload: Uint8Array;

  /** `frames`: F of the kind-2 packet inside (what `closed.frames` and `closed.dropped` count). */
  constructor(payload: Uint8Array, readonly frames: number) {
    this.wire = binaryWebSocketFrame(payload);
    this.payload = this.wire.subarray(this.wire.length - payload.length);
  }
}

/** One final binary frame, server to client: FIN + opcode 2, the shortest length form, no mask. */
export function binaryWebSocketFrame(payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(header + n);
  out[0] = 0x82;
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  out.set(payload, header);
  return out;
}

/** Something holding writes until the event loop's turn ends, so packets of one turn share one write. */
export interface TurnWriter {
  flush(): void;
}

const waiting = new Set<TurnWriter>();
let scheduled = false;

/**
 * Flushes `w` once the current turn's callbacks are done (setImmediate: after the I/O phase, no
 * timer delay). Packets of several publishers that the batcher finished together then reach a
 * listener in one write instead of one each.
 */
export function flushAfterTurn(w: TurnWriter): void {
  waiting.add(w);
  if (scheduled) return;
  scheduled = true;
  setImmediate(flushWaiting);
}

function flushWaiting(): void {
  scheduled = false;
  for (const w of waiting) {
    waiting.delete(w);
    w.flush();
  }
}
