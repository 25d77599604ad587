/**
 * Rooms extension of the streaming protocol (docs/protocol.md, "Rooms"): message types and the
 * kind-16 frame that carries a publisher's token packet to subscribers. Plain TypeScript with no
 * Node or DOM dependency, shared by the server and every client.
 */
import { WireError, decodeTokenPacket, frameView, type ReadyMessage, type StartMessage, type TokenExpectations, type TokenPacket } from './stream.js';

export const ROOMS_PUBLISH_PATH = '/v1/rooms/publish';
export const ROOMS_LISTEN_PATH = '/v1/rooms/listen';

/** Kind 16: u8 kind, 3 reserved bytes, u32 publisher number, then the publisher's kind-2 packet verbatim. */
export const KIND_ROOM_TOKENS = 16;
export const ROOM_TOKENS_HEADER = 8;

/** Room names: what a URL path segment and a log line can carry without escaping. */
export const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * What a subscriber needs to decode one publisher's packets and place them in time: the model
 * fields of the publisher's `ready` (frame n covers model samples [n·hop, (n+1)·hop); `chunkFrames`
 * is the frames per packet its stream produces), plus its place in the room.
 */
export interface PublisherInfo
  extends Pick<ReadyMessage, 'streamId' | 'model' | 'modelVersion' | 'modelSampleRate' | 'hopLength' | 'frameRate' | 'codebooks' | 'codebookSize' | 'codeBytes' | 'chunkFrames' | 'decoderLookaheadFrames'> {
  /** Room-unique number, the one in kind-16 frames. */
  publisher: number;
  label?: string;
  /** Publisher's wall clock (ms since the Unix epoch) when sample 0 of its stream was captured, if it said. */
  epochMs?: number;
  /** The frame the next packet starts at (in `joined`; 0 for a publisher that just arrived). */
  nextFrame: number;
}

/** What a `start` on the publish path carries beyond an ordinary encode `start`. */
export interface PublishStartFields {
  room: string;
  label?: string;
  /** Wall clock (ms since the Unix epoch) when sample 0 was captured. */
  epochMs?: number;
}

export type PublishStartMessage = StartMessage & PublishStartFields;

export interface JoinMessage {
  type: 'join';
  room: string;
}

export interface JoinedMessage {
  type: 'joined';
  room: string;
  subscriberId: string;
  publishers: PublisherInfo[];
  limits: { maxQueuedBytes: number; stallMs: number; idleTimeoutMs: number };
}

export interface PublisherJoinedMessage {
  type: 'publisher_joined';
  publisher: PublisherInfo;
}

export interface PublisherLeftMessage {
  type: 'publisher_left';
  publisher: number;
  /** Frames the publisher produced in all (the end of its timeline). */
  frames: number;
}

/** The listener's last message, after its `close`: what it received and what was dropped for it. */
export interface ListenerClosedMessage {
  type: 'closed';
  /** Frames (all publishers together) in the packets delivered, and in those dropped because the listener fell behind. */
  frames: number;
  dropped: number;
  /** The same in packets. */
  packets: number;
  packetsDropped: number;
}

/** Extra fields in the `ready` a room publisher gets. */
export interface PublishReadyFields {
  room: string;
  publisher: number;
}

export interface RoomTokenPacket {
  publisher: number;
  packet: TokenPacket;
}

/** Wraps an already encoded kind-2 packet; the result is sent unchanged to every subscriber. */
export function encodeRoomPacket(publisher: number, tokenPacket: Uint8Array): Uint8Array {
  const out = new Uint8Array(ROOM_TOKENS_HEADER + tokenPacket.length);
  out[0] = KIND_ROOM_TOKENS;
  frameView(out).setUint32(4, publisher >>> 0, true);
  out.set(tokenPacket, ROOM_TOKENS_HEADER);
  return out;
}

export function decodeRoomPacket(frame: Uint8Array, expect: TokenExpectations = {}): RoomTokenPacket {
  if (frame.length < ROOM_TOKENS_HEADER || frame[0] !== KIND_ROOM_TOKENS) throw new WireError('bad_frame', 'not a room token frame (kind 16, 8-byte header)');
  const publisher = frameView(frame).getUint32(4, true);
  return { publisher, packet: decodeTokenPacket(frame.subarray(ROOM_TOKENS_HEADER), expect) };
}
