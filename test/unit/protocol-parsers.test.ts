/** protocol/parse.ts: what a client's control message must look like, and the error code when it does not. */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../protocol/errors.js';
import { parseControlMessage, parseFlush, parseJoin, parsePublishStartFields, parseStart, type ControlMessage } from '../../protocol/parse.js';

const text = (s: string) => new TextEncoder().encode(s);

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return { code: (e as ProtocolError).code, message: (e as Error).message };
  }
  throw new Error('accepted');
}

const start = (fields: Record<string, unknown>): ControlMessage => ({ type: 'start', direction: 'encode', ...fields });

describe('parseControlMessage', () => {
  it('returns the JSON object of a text frame', () => {
    expect(parseControlMessage(text('{"type":"flush","marker":1}'), 100)).toEqual({ type: 'flush', marker: 1 });
  });

  it('refuses oversized, non-JSON, non-object and untyped frames with their own codes', () => {
    expect(refusal(() => parseControlMessage(text('{"type":"flush"}'), 10))).toEqual({ code: 'frame_too_large', message: 'control message of 16 bytes (limit 10)' });
    expect(refusal(() => parseControlMessage(text('{type: flush}'), 100)).code).toBe('bad_json');
    expect(refusal(() => parseControlMessage(text('[1, 2]'), 100)).code).toBe('bad_json');
    expect(refusal(() => parseControlMessage(text('null'), 100)).code).toBe('bad_json');
    expect(refusal(() => parseControlMessage(text('{"type": 3}'), 100)).code).toBe('bad_message');
  });
});

describe('parseStart', () => {
  it('types a valid start, leaving absent and null fields for the server to default', () => {
    expect(parseStart(start({ model: 'default', format: 'f32le', sampleRate: 48000, codebooks: 4, chunkMs: 40, label: 'ignored here' }))).toEqual({
      type: 'start', version: 1, direction: 'encode', model: 'default', format: 'f32le', sampleRate: 48000, codebooks: 4, chunkMs: 40,
    });
    expect(parseStart({ type: 'start', direction: 'decode', model: null, version: 1 })).toMatchObject({ direction: 'decode', model: undefined, format: undefined });
  });

  it('names the field that is wrong', () => {
    expect(refusal(() => parseStart(start({ version: 2 })))).toEqual({ code: 'unsupported_version', message: 'protocol version 2 not supported (1)' });
    expect(refusal(() => parseStart(start({ direction: 'both' }))).message).toBe('direction must be "encode" or "decode"');
    expect(refusal(() => parseStart(start({ model: 7 }))).message).toBe('model must be a string');
    expect(refusal(() => parseStart(start({ format: 's24le' }))).message).toBe('format must be "s16le" or "f32le"');
    for (const sampleRate of [3999, 384001, 44100.5, '48000']) expect(refusal(() => parseStart(start({ sampleRate }))).message).toBe('sampleRate must be an integer in 4000..384000');
    expect(refusal(() => parseStart(start({ codebooks: 2.5 }))).code).toBe('bad_message');
    expect(refusal(() => parseStart(start({ chunkMs: 'fast' }))).code).toBe('bad_message');
  });
});

describe('parseFlush, parsePublishStartFields, parseJoin', () => {
  it('takes a string or number marker, and nothing else', () => {
    expect(parseFlush({ type: 'flush', marker: 'end' })).toEqual({ type: 'flush', marker: 'end' });
    expect(parseFlush({ type: 'flush', marker: 0 })).toEqual({ type: 'flush', marker: 0 });
    for (const marker of [undefined, 'x'.repeat(129), Number.NaN, {}]) expect(refusal(() => parseFlush({ type: 'flush', marker })).code).toBe('bad_message');
  });

  it('checks room names, labels and clocks of room messages', () => {
    expect(parsePublishStartFields(start({ room: 'lobby-1', label: 'alice', epochMs: 1.7e12 }))).toEqual({ room: 'lobby-1', label: 'alice', epochMs: 1.7e12 });
    expect(refusal(() => parsePublishStartFields(start({ direction: 'decode', room: 'lobby' }))).message).toMatch(/direction must be "encode"/);
    for (const room of ['', '-lobby', 'a b', 'x'.repeat(65), 3]) expect(refusal(() => parseJoin({ type: 'join', room })).code).toBe('bad_message');
    expect(refusal(() => parsePublishStartFields(start({ room: 'lobby', label: 'x'.repeat(65) }))).message).toMatch(/^label/);
    expect(refusal(() => parsePublishStartFields(start({ room: 'lobby', epochMs: 'now' }))).message).toMatch(/^epochMs/);
    expect(parseJoin({ type: 'join', room: 'x'.repeat(64) })).toEqual({ type: 'join', room: 'x'.repeat(64) });
  });
});
