/** Legal but unusual WAV files, built from an ordinary one: RIFX, extra chunks, compressed encodings. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface RiffChunk {
  id: string;
  body: Buffer;
}

/** The chunks of a little-endian RIFF WAVE file. */
export function riffChunks(wav: Buffer): RiffChunk[] {
  const out: RiffChunk[] = [];
  for (let p = 12; p + 8 <= wav.length; ) {
    const size = wav.readUInt32LE(p + 4);
    out.push({ id: wav.toString('latin1', p, p + 4), body: wav.subarray(p + 8, p + 8 + size) });
    p += 8 + size + (size & 1);
  }
  return out;
}

/** A RIFF (or RIFX: every size and field big-endian) WAVE file of these chunks, odd sizes padded. */
export function buildWav(chunks: RiffChunk[], bigEndian = false): Buffer {
  const parts = chunks.map((c) => {
    const head = Buffer.alloc(8);
    head.write(c.id, 0, 'latin1');
    if (bigEndian) head.writeUInt32BE(c.body.length, 4);
    else head.writeUInt32LE(c.body.length, 4);
    return Buffer.concat([head, c.body, Buffer.alloc(c.body.length & 1)]);
  });
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write(bigEndian ? 'RIFX' : 'RIFF', 0, 'latin1');
  if (bigEndian) head.writeUInt32BE(body.length + 4, 4);
  else head.writeUInt32LE(body.length + 4, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, body]);
}

/** The same file as big-endian RIFX: fmt fields and samples byte-swapped. */
export function toRifx(wav: Buffer): Buffer {
  const chunks = riffChunks(wav).map((c) => ({ ...c, body: Buffer.from(c.body) }));
  const fmt = chunks.find((c) => c.id === 'fmt ')!.body;
  const bits = fmt.readUInt16LE(14);
  const extensible = fmt.readUInt16LE(0) === 0xfffe;
  // extensible: cbSize, valid bits, channel mask and the subformat GUID's first field as well
  for (const o of [0, 2, 12, 14, ...(extensible ? [16, 18] : [])]) fmt.writeUInt16BE(fmt.readUInt16LE(o), o);
  for (const o of [4, 8, ...(extensible ? [20, 24] : [])]) fmt.writeUInt32BE(fmt.readUInt32LE(o), o);
  const width = bits / 8;
  for (const c of chunks) {
    if (c.id !== 'data' || width <= 1) continue;
    for (let p = 0; p + width <= c.body.length; p += width) c.body.subarray(p, p + width).reverse();
  }
  return buildWav(chunks, true);
}

/** The same file with two LIST chunks, a JUNK chunk before fmt and an odd-sized chunk before data. */
export function withExtraChunks(wav: Buffer): Buffer {
  const chunks = riffChunks(wav);
  const list = (text: string) => ({ id: 'LIST', body: Buffer.concat([Buffer.from('INFOICMT', 'latin1'), u32le(text.length), Buffer.from(text, 'latin1')]) });
  const dataAt = chunks.findIndex((c) => c.id === 'data');
  return buildWav([
    { id: 'JUNK', body: Buffer.alloc(28) },
    ...chunks.slice(0, dataAt),
    list('first'),
    list('second!'),
    { id: 'odd ', body: Buffer.from('abc') },
    ...chunks.slice(dataAt),
  ]);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** `src` re-encoded by ffmpeg into a WAV with this codec (pcm_mulaw, pcm_alaw, adpcm_ima_wav, pcm_s24le, pcm_f32le ...). */
export function ffmpegWav(src: string, codec: string, dir: string): string {
  const out = join(dir, `${codec}.wav`);
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', src, '-c:a', codec, out]);
  return out;
}

/** Writes a variant next to the others and returns its path. */
export function writeVariant(dir: string, name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
