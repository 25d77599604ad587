import { open } from 'node:fs/promises';
import { openAudio } from '../codec/audio-input.js';
import { ffmpegDecodeGroup } from '../codec/ffmpeg-group.js';
import { BYTES_PER_SAMPLE } from '../codec/pcm.js';
import { looksLikeWav, parseWavHeader } from '../codec/wav.js';
import type { PrepItem } from './inputs.js';

export interface DecodeGroupLimits {
  /** most files per ffmpeg process (the first group is smaller, so the encoder gets work sooner); 1: every file alone */
  files: number;
  /** decoded bytes one group may hold in memory */
  outputBytes: number;
}

export const DEFAULT_DECODE_GROUP: DecodeGroupLimits = { files: 64, outputBytes: 64 << 20 };

export interface DecodeAheadOptions {
  /** the model's rate */
  sampleRate: number;
  ffmpegTimeoutMs: number;
  group?: DecodeGroupLimits;
  /** files larger than this are decoded alone (streamed): their own decoding outweighs a process start */
  groupFileBytes?: number;
}

/**
 * How an input is read: alone (`single`: in-process, or a streamed ffmpeg of
 * its own), or with others through one ffmpeg (`group`; `group-wav` for a
 * PCM WAV that ffmpeg need not probe).
 */
type Route = { how: 'single' } | { how: 'group' } | { how: 'group-wav'; expansion: number };

export interface DecodeCounts {
  /** ffmpeg processes that decoded several files, and the files they decoded */
  groups: number;
  groupedFiles: number;
  /** group runs that failed (the files were then decoded alone, or regrouped without the one ffmpeg named) */
  failedGroups: number;
}

/** Files in the first group of a job (the encoder waits for it). */
const FIRST_GROUP_FILES = 4;
/** Bytes read to find a WAV header's sample rate. */
const HEAD_BYTES = 4096;
/** Decoded bytes per input byte of a compressed file, assumed before a group has shown the real ratio (a 64 kbit/s MP3 gives 12 at 24 kHz). */
const FIRST_EXPANSION = 16;

/**
 * Decodes the inputs of one job, in plan order, several short files per
 * ffmpeg process. `open(i)` is what processItem reads item i from. Short
 * inputs that go through ffmpeg anyway (compressed formats, WAV at another
 * rate) are decoded in groups a little ahead of their turn and held, decoded,
 * until taken; WAV at the model rate is parsed in-process, and long files are
 * decoded alone, streamed. Grouping only changes the CPU spent: a grouped file
 * gives the same samples as decoding it alone, and a group that fails in any
 * way falls back to decoding its files alone, so every file still ends with
 * its own result or its own error.
 */
export class DecodeAhead {
  private readonly groupFiles: number;
  private readonly groupFileBytes: number;
  private readonly groupOutputBytes: number;
  /** PCM WAV members of groups (ffmpeg skips probing them) */
  private readonly pcmWav: boolean[] = [];
  /** decoded bytes expected of each group member */
  private readonly expected: number[] = [];
  /** the decoded audio of item i's group, while item i has not taken its part */
  private readonly groupOf: (Promise<Map<number, Float32Array>> | undefined)[] = [];
  /** items before this have been routed */
  private horizon = 0;
  /** decoded bytes expected of group members launched and not yet opened */
  private heldBytes = 0;
  private launchedAny = false;
  private planning: Promise<void> = Promise.resolve();
  /** decoded bytes per input byte of compressed files: the most seen in a group, and a floor raised by groups that went over the limit */
  private seenExpansion = 0;
  private expansionFloor = 0;
  readonly counts: DecodeCounts = { groups: 0, groupedFiles: 0, failedGroups: 0 };

  constructor(
    private readonly items: PrepItem[],
    private readonly opts: DecodeAheadOptions,
  ) {
    const group = opts.group ?? DEFAULT_DECODE_GROUP;
    this.groupFiles = group.files;
    this.groupFileBytes = opts.groupFileBytes ?? 1 << 20;
    this.groupOutputBytes = group.outputBytes;
  }

  /** Mono float32 PCM of item i at the model rate; errors are thrown by the iteration, as openAudio's are. */
  async open(i: number): Promise<AsyncIterable<Float32Array>> {
    const planned = (this.planning = this.planning.then(() => this.planFor(i)));
    await planned;
    const group = this.groupOf[i];
    this.groupOf[i] = undefined;
    if (group) this.heldBytes -= this.expected[i];
    const decoded = await group;
    const pcm = decoded?.get(i);
    decoded?.delete(i);
    return pcm ? once(pcm) : openPcm(this.items[i].path, this.opts.sampleRate, this.opts.ffmpegTimeoutMs);
  }

  /** Decoded bytes per input byte assumed for a compressed file. */
  private expansion(): number {
    return Math.max(this.seenExpansion || FIRST_EXPANSION, this.expansionFloor);
  }

  /**
   * Routes item i, and launches groups a group's worth of items ahead of it
   * while what is held decoded stays within about two groups' limit (item i
   * itself is always routed: an open never waits on memory). Each group is
   * launched when it fills up or its span of items runs out. A member's decoded
   * size is known from its header for PCM WAV and estimated for compressed files.
   */
  private async planFor(i: number): Promise<void> {
    const end = Math.min(this.items.length, i + this.groupFiles + 1);
    while (this.horizon <= i || (this.horizon < end && this.heldBytes < 2 * this.groupOutputBytes)) {
      const expansion = this.expansion();
      // a group spans a bounded run of items, which bounds how far ahead of its turn audio is held
      const spanEnd = Math.min(this.items.length, this.horizon + 4 * this.groupFiles);
      // the first group is small: the encoder waits for it
      const size = this.launchedAny ? this.groupFiles : Math.min(this.groupFiles, FIRST_GROUP_FILES);
      const members: number[] = [];
      let bytes = 0;
      for (; this.horizon < spanEnd && members.length < size; this.horizon++) {
        const item = this.items[this.horizon];
        if (item.bytes > this.groupFileBytes) continue;
        const r = await route(item, this.opts.sampleRate);
        if (r.how === 'single') continue;
        const decoded = item.bytes * (r.how === 'group-wav' ? r.expansion : expansion);
        if (decoded > this.groupOutputBytes) continue;
        if (bytes + decoded > this.groupOutputBytes) break;
        this.pcmWav[this.horizon] = r.how === 'group-wav';
        this.expected[this.horizon] = decoded;
        members.push(this.horizon);
        bytes += decoded;
      }
      if (members.length < 2) continue; // alone, it is decoded (streamed) when its turn comes
      this.launchedAny = true;
      this.heldBytes += bytes;
      const decoded = this.decode(members);
      for (const m of members) this.groupOf[m] = decoded;
    }
  }

  /** Decodes `members` in one process; the map lacks those that must be decoded alone. */
  private async decode(members: number[]): Promise<Map<number, Float32Array>> {
    const out = new Map<number, Float32Array>();
    let rest = members;
    while (rest.length > 1) {
      const r = await ffmpegDecodeGroup(
        rest.map((m) => ({ path: this.items[m].path, pcmWav: this.pcmWav[m] })),
        { sampleRate: this.opts.sampleRate, timeoutMs: this.opts.ffmpegTimeoutMs, maxOutputBytes: this.groupOutputBytes },
      );
      if (r.ok) {
        this.counts.groups++;
        this.counts.groupedFiles += rest.length;
        rest.forEach((m, k) => {
          out.set(m, r.pcm[k]);
          if (!this.pcmWav[m]) this.seenExpansion = Math.max(this.seenExpansion, r.pcm[k].byteLength / this.items[m].bytes);
        });
        break;
      }
      this.counts.failedGroups++;
      if (r.overLimit) {
        // the compressed members' estimate was short (a PCM WAV's size is exact): from now on assume
        // they expand twice as much as this group would have allowed
        const compressed = rest.filter((m) => !this.pcmWav[m]);
        const inputBytes = (compressed.length ? compressed : rest).reduce((s, m) => s + this.items[m].bytes, 0);
        this.expansionFloor = Math.max(this.expansionFloor, (2 * this.groupOutputBytes) / inputBytes);
      }
      if (r.culprit === undefined) break;
      // ffmpeg named the file it failed on: that one goes alone (for its own error), the rest try again together
      rest = rest.filter((_, k) => k !== r.culprit);
    }
    return out;
  }
}

/** Where an input goes, from its first bytes: only WAV at the model rate is read in-process. */
async function route(item: PrepItem, rate: number): Promise<Route> {
  let head: Buffer;
  try {
    const fh = await open(item.path, 'r');
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
      head = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    return SINGLE; // openAudio reports why
  }
  if (head.length === 0) return SINGLE;
  if (!looksLikeWav(head)) return GROUP;
  try {
    const info = parseWavHeader(head);
    if (!info) return SINGLE; // a long header is rare enough to decode alone
    if (info.encoding === null) return GROUP; // compressed encodings (ADPCM, A-law, ...): ffmpeg's, as alone
    if (info.bigEndian || info.sampleRate === rate) return SINGLE; // read in-process (ffmpeg misreads RIFX samples)
    // mono float32 at `rate` out, per byte of interleaved samples in
    return { how: 'group-wav', expansion: (4 * rate) / (BYTES_PER_SAMPLE[info.encoding] * info.channels * info.sampleRate) };
  } catch {
    return SINGLE; // openAudio reports why
  }
}

const SINGLE: Route = { how: 'single' };
const GROUP: Route = { how: 'group' };

/**
 * One input decoded alone: WAV at `rate` in-process, everything else through
 * ffmpeg (WAV at other rates too, so a file gives the same samples alone or in
 * a group).
 */
export async function openPcm(path: string, rate: number, timeoutMs: number): Promise<AsyncIterable<Float32Array>> {
  return (await openAudio({ path }, { sampleRate: rate, ffmpegTimeoutMs: timeoutMs, otherRateWav: 'ffmpeg' })).pcm;
}

async function* once(pcm: Float32Array): AsyncGenerator<Float32Array> {
  yield pcm;
}
