import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CodecModel, openAudio } from '../../codec/index.js';
import { DEFAULT_MODEL_DIR, readPcm, scratch, speechWav } from '../helpers/fixtures.js';

let model: CodecModel;

beforeAll(async () => {
  model = await CodecModel.load(DEFAULT_MODEL_DIR, { intraOpThreads: 1 });
});

/** Opens and fully encodes a file; resolves to the CodecError code, or 'ok'. */
async function outcome(source: { path: string } | { stream: NodeJS.ReadableStream }): Promise<string> {
  try {
    const input = await openAudio(source as { path: string }, { sampleRate: 24000, ffmpegTimeoutMs: 20_000 });
    for await (const _ of model.encodeStream(input.pcm)) void _;
    return 'ok';
  } catch (e) {
    const code = (e as { code?: string }).code;
    expect(typeof code, String(e)).toBe('string');
    expect((e as Error).message.length).toBeGreaterThan(10);
    return code as string;
  }
}

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(scratch, name);
  writeFileSync(p, bytes);
  return p;
}

/** A canonical 44-byte WAV header with chosen fields, followed by `dataBytes` of payload. */
function wav(o: { format?: number; channels?: number; rate?: number; bits?: number; blockAlign?: number; data: Buffer }): Buffer {
  const channels = o.channels ?? 1;
  const bits = o.bits ?? 16;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + o.data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(o.format ?? 1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(o.rate ?? 16000, 24);
  h.writeUInt32LE(Math.min(0xffffffff, ((o.rate ?? 16000) * channels * bits) / 8), 28);
  h.writeUInt16LE(o.blockAlign ?? Math.min(0xffff, (channels * bits) / 8), 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(o.data.length, 40);
  return Buffer.concat([h, o.data]);
}

describe('hostile and broken input gets a typed error and reads nothing else', () => {
  it('non-audio files', async () => {
    const random = Buffer.alloc(5000);
    for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) & 0xff;
    expect(await outcome({ path: file('random.bin', random) })).toBe('unsupported_media');
    // named .mp3, ffmpeg tries its MP3 demuxer on it and fails: undecodable rather than unknown
    expect(['unsupported_media', 'undecodable_audio']).toContain(await outcome({ path: file('text.mp3', 'hello, this is not audio at all\n'.repeat(50)) }));
    expect(await outcome({ path: file('text.bin', 'hello, this is not audio at all\n'.repeat(50)) })).toBe('unsupported_media');
    expect(await outcome({ path: '/etc/passwd' })).toBe('unsupported_media');
    expect(await outcome({ path: scratch })).toBe('invalid_argument'); // a directory
    expect(await outcome({ path: join(scratch, 'missing.wav') })).toBe('invalid_argument');
  });

  it('zero-length input', async () => {
    expect(await outcome({ path: file('empty.wav', '') })).toBe('invalid_audio');
    expect(await outcome({ path: file('header-only.wav', wav({ data: Buffer.alloc(0) })) })).toBe('invalid_audio');
  });

  it('NaN and Inf samples', async () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const data = Buffer.alloc(4 * 1600);
      data.writeFloatLE(bad, 4 * 800);
      expect(await outcome({ path: file(`nan-${bad}.wav`, wav({ format: 3, bits: 32, data })) })).toBe('invalid_audio');
    }
  });

  it('absurd sample rates, channel counts and sample formats in WAV headers', async () => {
    const data = Buffer.alloc(3200);
    const cases: [string, Parameters<typeof wav>[0], string][] = [
      ['rate0', { rate: 0, data }, 'invalid_audio'],
      ['rate1', { rate: 1, data }, 'invalid_audio'],
      ['rate4G', { rate: 0xffffffff, data }, 'invalid_audio'],
      ['ch0', { channels: 0, blockAlign: 2, data }, 'invalid_audio'],
      ['ch65535', { channels: 65535, data }, 'invalid_audio'],
      ['align', { blockAlign: 7, data }, 'invalid_audio'],
      // encodings the native reader leaves to ffmpeg: garbage in an MPEG-in-WAV is refused there
      ['mpeg-in-wav', { format: 0x55, bits: 0, blockAlign: 1, data: Buffer.alloc(3200, 0x5a) }, 'unsupported_media'],
    ];
    for (const [name, o, code] of cases) expect(await outcome({ path: file(`${name}.wav`, wav(o)) }), name).toBe(code);
    const noData = Buffer.from(wav({ data }).subarray(0, 36));
    expect(await outcome({ path: file('nodata.wav', noData) })).toBe('invalid_audio');
  });

  it('playlists and concat lists that point at local files are refused without reading them', async () => {
    // A canary that *is* decodable audio: if ffmpeg followed the reference, decoding would succeed.
    const canary = speechWav('canary');
    const hls = `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\nfile://${canary}\n#EXTINF:2.0,\n${canary}\n#EXTINF:2.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n`;
    const concat = `ffconcat version 1.0\nfile ${canary}\nfile /etc/passwd\n`;
    for (const [name, body] of [['evil.m3u8', hls], ['evil.mp3', hls], ['evil.ffconcat', concat], ['evil.wav', concat]]) {
      expect(await outcome({ path: file(name, body) }), name).toBe('unsupported_media');
      expect(await outcome({ stream: createReadStream(file(name, body)) }), `${name} piped`).toBe('unsupported_media');
    }
  });

  it('legal WAV encodings the native reader does not handle are decoded by ffmpeg', async () => {
    const data = Buffer.alloc(3200, 0xd5); // A-law silence
    expect(await outcome({ path: file('alaw.wav', wav({ format: 6, bits: 8, data })) })).toBe('ok');
    expect(await outcome({ path: file('bits13.wav', wav({ bits: 13, blockAlign: 2, data })) })).toBe('ok');
  });

  it('the process survives and still encodes good audio afterwards', async () => {
    const good = speechWav('still alive');
    expect(await outcome({ path: good })).toBe('ok');
    expect(readPcm(good, 24000).length).toBeGreaterThan(1000);
  });
});
