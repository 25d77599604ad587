/**
 * Runtime parsers for what clients send (docs/protocol.md §3, §10): each takes a decoded control
 * message and returns it typed, or throws the ProtocolError the server answers with. Checks that
 * need the server's state (which models exist, what a key may do) are the server's.
 */
import { ProtocolError } from './errors.js';
import { ROOM_NAME, type JoinMessage, type PublishStartFields } from './rooms.js';
import { PROTOCOL_VERSION, type FlushMessage, type StartMessage } from './stream.js';

/** A text frame's JSON object; `type` says which message it is. */
export type ControlMessage = Record<string, unknown> & { type: string };

const utf8 = new TextDecoder();

/** Decodes a text frame into a control message, refusing oversized, non-JSON and non-object ones. */
export function parseControlMessage(data: Uint8Array, maxTextBytes: number): ControlMessage {
  if (data.length > maxTextBytes) throw new ProtocolError('frame_too_large', `control message of ${data.length} bytes (limit ${maxTextBytes})`);
  let msg: unknown;
  try {
    msg = JSON.parse(utf8.decode(data));
  } catch {
    throw new ProtocolError('bad_json', 'text frame is not JSON');
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new ProtocolError('bad_json', 'control message must be a JSON object');
  // a string `type` we do not know may be a newer message (unknown_type); a missing or non-string one is malformed
  if (typeof (msg as { type?: unknown }).type !== 'string') throw new ProtocolError('bad_message', 'control message needs a string field "type"');
  return msg as ControlMessage;
}

/** `start` (§3). Absent and null fields stay undefined: the server fills in its defaults. */
export function parseStart(m: ControlMessage): StartMessage {
  const version = m.version ?? PROTOCOL_VERSION;
  if (version !== PROTOCOL_VERSION) throw new ProtocolError('unsupported_version', `protocol version ${JSON.stringify(version)} not supported (1)`);
  const direction = m.direction;
  if (direction !== 'encode' && direction !== 'decode') throw new ProtocolError('bad_message', 'direction must be "encode" or "decode"');
  const model = m.model ?? undefined;
  if (model !== undefined && typeof model !== 'string') throw new ProtocolError('bad_message', 'model must be a string');
  const format = m.format ?? undefined;
  if (format !== undefined && format !== 's16le' && format !== 'f32le') throw new ProtocolError('bad_message', 'format must be "s16le" or "f32le"');
  const sampleRate = m.sampleRate ?? undefined;
  if (sampleRate !== undefined && (typeof sampleRate !== 'number' || !Number.isInteger(sampleRate) || sampleRate < 4000 || sampleRate > 384000)) {
    throw new ProtocolError('bad_message', 'sampleRate must be an integer in 4000..384000');
  }
  const codebooks = m.codebooks ?? undefined;
  if (codebooks !== undefined && (typeof codebooks !== 'number' || !Number.isInteger(codebooks))) throw new ProtocolError('bad_message', 'codebooks must be an integer');
  const chunkMs = m.chunkMs ?? undefined;
  if (chunkMs !== undefined && (typeof chunkMs !== 'number' || !Number.isFinite(chunkMs))) throw new ProtocolError('bad_message', 'chunkMs must be a number');
  return { type: 'start', version: PROTOCOL_VERSION, direction, model, format, sampleRate, codebooks, chunkMs };
}

/** `flush` (§3). */
export function parseFlush(m: ControlMessage): FlushMessage {
  const marker = m.marker;
  const ok = (typeof marker === 'string' && marker.length <= 128) || (typeof marker === 'number' && Number.isFinite(marker));
  if (!ok) throw new ProtocolError('bad_message', 'flush needs a marker: a string of up to 128 characters or a number');
  return { type: 'flush', marker: marker as string | number };
}

/** The fields a `start` on /v1/rooms/publish adds (§10.2); the rest is an ordinary `start`. */
export function parsePublishStartFields(m: ControlMessage): PublishStartFields {
  if (m.direction !== 'encode') throw new ProtocolError('bad_message', 'room publishers send audio: direction must be "encode"');
  const room = m.room;
  if (typeof room !== 'string' || !ROOM_NAME.test(room)) throw new ProtocolError('bad_message', 'room must be 1-64 characters of [A-Za-z0-9._-]');
  const { label, epochMs } = m;
  if (label !== undefined && (typeof label !== 'string' || label.length > 64)) throw new ProtocolError('bad_message', 'label must be a string of up to 64 characters');
  if (epochMs !== undefined && (typeof epochMs !== 'number' || !Number.isFinite(epochMs))) throw new ProtocolError('bad_message', 'epochMs must be a number (ms since the Unix epoch)');
  return { room, label, epochMs };
}

/** `join` on /v1/rooms/listen (§10.3). */
export function parseJoin(m: ControlMessage): JoinMessage {
  const room = m.room;
  if (typeof room !== 'string' || !ROOM_NAME.test(room)) throw new ProtocolError('bad_message', 'room must be 1-64 characters of [A-Za-z0-9._-]');
  return { type: 'join', room };
}
