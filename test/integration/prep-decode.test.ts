import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { concat } from '../../codec/index.js';
import { ffmpegDecode } from '../../codec/ffmpeg.js';
import { ffmpegDecodeGroup } from '../../codec/ffmpeg-group.js';
import { DecodeAhead, openPcm } from '../../prep/decode-ahead.js';
import type { PrepItem } from '../../prep/inputs.js';
import { convertAudio, scratch, speechWav } from '../helpers/fixtures.js';

const RATE = 24000;
let files: Record<string, string>;

async function collect(pcm: AsyncIterable<Float32Array>): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for await (const p of pcm) parts.push(p);
  return concat(parts);
}

const bytesOf = (pcm: Float32Array) => Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);

function write(name: string, data: string | Buffer): string {
  const p = join(scratch, name);
  writeFileSync(p, data);
  return p;
}

beforeAll(() => {
  const a = speechWav('Several files, one process.');
  const b = speechWav('A second voice, a little longer than the first one.');
  // FLAC with flipped bits in two places: ffmpeg reports decode errors and goes on (exit 0)
  const corrupt = join(scratch, 'corrupt.flac');
  copyFileSync(convertAudio(b, 'flac', 22050, 1), corrupt);
  const c = readFileSync(corrupt);
  for (const at of [Math.floor(c.length / 3), Math.floor((2 * c.length) / 3)]) for (let i = at; i < at + 64; i++) c[i] ^= 0x55;
  writeFileSync(corrupt, c);
  files = {
    mp3: convertAudio(a, 'mp3', 44100, 2),
    flac: convertAudio(b, 'flac', 16000, 1),
    ogg: convertAudio(a, 'ogg', 48000, 1),
    opus: convertAudio(b, 'opus', 48000, 2),
    m4a: convertAudio(a, 'm4a', 44100, 1),
    wav22: a,
    wav44s24: convertAudio(b, 'wav', 44100, 2, ['-c:a', 'pcm_s24le']),
    wav24: convertAudio(a, 'wav', RATE, 1),
    corrupt,
    text: write('notes.txt', 'not audio at all\n'.repeat(20)),
    empty: write('empty.mp3', ''),
    video: join(scratch, 'video-only.mkv'),
    // 20 s of digital silence: 11 kB of FLAC, 1.9 MB decoded
    silence: join(scratch, 'silence.flac'),
  };
  // lists naming a decodable file next to them: ffmpeg without the whitelists would decode them
  files.playlist = write('list.m3u8', `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n${basename(files.mp3)}\n#EXT-X-ENDLIST\n`);
  files.concat = write('list.ffconcat', `ffconcat version 1.0\nfile ${basename(files.mp3)}\n`);
  const ffmpeg = (...args: string[]) => execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args]);
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=d=1', '-frames:v', '1', '-c:v', 'ffv1', files.video); // no audio stream
  ffmpeg('-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '20', '-c:a', 'flac', files.silence);
});

describe('ffmpegDecodeGroup: several files in one ffmpeg process', () => {
  it('gives each file exactly the samples ffmpegDecode gives it alone', async () => {
    const names = ['mp3', 'flac', 'ogg', 'opus', 'm4a', 'wav22', 'wav44s24', 'wav24', 'mp3'];
    // PCM WAV can be flagged as such (ffmpeg then skips probing): the same samples either way
    const pcmWav = (n: string) => n.startsWith('wav');
    const r = await ffmpegDecodeGroup(names.map((n) => ({ path: files[n], pcmWav: pcmWav(n) })), { sampleRate: RATE, timeoutMs: 30_000, maxOutputBytes: 1 << 26 });
    expect(r.ok, r.ok ? '' : r.reason).toBe(true);
    if (!r.ok) return;
    for (const [i, n] of names.entries()) {
      const alone = await collect(ffmpegDecode({ path: files[n] }, { sampleRate: RATE }));
      expect(alone.length, n).toBeGreaterThan(RATE / 2);
      expect(bytesOf(r.pcm[i]).equals(bytesOf(alone)), `${n}: ${r.pcm[i].length} vs ${alone.length} samples`).toBe(true);
      if (pcmWav(n)) expect(bytesOf(await collect(ffmpegDecode({ path: files[n], pcmWav: true }, { sampleRate: RATE }))).equals(bytesOf(alone)), n).toBe(true);
    }
  });

  it('fails as a whole, naming the file ffmpeg failed on; playlists are refused per input', async () => {
    const opts = { sampleRate: RATE, timeoutMs: 30_000, maxOutputBytes: 1 << 26 };
    for (const bad of ['text', 'empty', 'video', 'playlist', 'concat', 'corrupt']) {
      const r = await ffmpegDecodeGroup([files.mp3, files[bad], files.flac].map((path) => ({ path })), opts);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.culprit, `${bad}: ${r.reason}`).toBe(1);
    }
    const missing = await ffmpegDecodeGroup([{ path: files.mp3 }, { path: join(scratch, 'missing.flac') }], opts);
    expect(missing).toMatchObject({ ok: false, culprit: 1 });
  });

  it('stops at its output limit and at its timeout (a file alone too)', async () => {
    const big = await ffmpegDecodeGroup([{ path: files.mp3 }, { path: files.flac }], { sampleRate: RATE, timeoutMs: 30_000, maxOutputBytes: 20_000 });
    expect(big).toMatchObject({ ok: false, overLimit: true });
    const slow = await ffmpegDecodeGroup([{ path: files.mp3 }, { path: files.flac }], { sampleRate: RATE, timeoutMs: 1, maxOutputBytes: 1 << 26 });
    expect(slow).toMatchObject({ ok: false });
    expect(slow.ok ? '' : slow.reason).toMatch(/longer than/);
    await expect(collect(ffmpegDecode({ path: files.mp3 }, { sampleRate: RATE, timeoutMs: 1 }))).rejects.toMatchObject({ code: 'timeout' });
  });
});

/** What reading an item gives: its samples, or its error's code and message. */
async function outcome(open: () => Promise<AsyncIterable<Float32Array>>): Promise<{ pcm?: Buffer; error?: string }> {
  try {
    return { pcm: bytesOf(await collect(await open())) };
  } catch (e) {
    return { error: `${(e as { code?: string }).code}: ${(e as Error).message}` };
  }
}

function items(names: string[]): PrepItem[] {
  return names.map((n, i) => ({ id: `${i}-${n}`, key: `k${i}`, path: files[n], source: n, bytes: statSync(files[n], { throwIfNoEntry: false })?.size ?? 0 }));
}

describe('DecodeAhead: the inputs of a job, short ones grouped', () => {
  const names = ['wav24', 'mp3', 'flac', 'text', 'wav22', 'ogg', 'corrupt', 'wav24', 'empty', 'm4a', 'opus', 'wav44s24', 'video', 'mp3', 'flac'];

  async function compare(decoder: DecodeAhead, list: PrepItem[]): Promise<void> {
    // opened all at once, as the pipeline's decoders do
    const got = await Promise.all(list.map((_, i) => outcome(() => decoder.open(i))));
    for (const [i, item] of list.entries()) {
      const alone = await outcome(() => openPcm(item.path, RATE, 30_000));
      expect(got[i].error, item.source).toBe(alone.error);
      expect(got[i].pcm?.equals(alone.pcm!), `${item.source}: samples differ from decoding it alone`).toBe(alone.pcm ? true : undefined);
    }
  }

  it('gives every input the samples or the error it gets alone; a bad file costs only its own result', async () => {
    const list = items(names);
    const decoder = new DecodeAhead(list, { sampleRate: RATE, ffmpegTimeoutMs: 30_000, group: { files: 6, outputBytes: 64 << 20 } });
    await compare(decoder, list);
    // grouped: every ffmpeg-bound file but the four broken ones (24 kHz WAV is read in-process)
    expect(decoder.counts.groupedFiles).toBe(names.filter((n) => !['wav24', 'text', 'corrupt', 'empty', 'video'].includes(n)).length);
    expect(decoder.counts.failedGroups).toBeGreaterThanOrEqual(2);
  });

  it('decodes alone what does not fit a group (file size, decoded size)', async () => {
    const list = items([...names, 'silence', 'mp3']);
    const bySize = new DecodeAhead(list, { sampleRate: RATE, ffmpegTimeoutMs: 30_000, groupFileBytes: 1000 });
    await compare(bySize, list);
    expect(bySize.counts).toEqual({ groups: 0, groupedFiles: 0, failedGroups: 0 });
    const byOutput = new DecodeAhead(list, { sampleRate: RATE, ffmpegTimeoutMs: 30_000, group: { files: 64, outputBytes: 1 << 20 } });
    await compare(byOutput, list);
    expect(byOutput.counts.failedGroups).toBeGreaterThanOrEqual(1); // the group with the silence
    expect(byOutput.counts.groups).toBeGreaterThanOrEqual(1);
  });
});
