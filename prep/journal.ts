import { appendFile, open, readFile } from 'node:fs/promises';
import type { PrepFailure } from './inputs.js';
import type { IndexEntry, Totals } from './item.js';

/**
 * A job's journal: one JSON line per event, appended and fsynced only after
 * the shard bytes it describes are on disk, so it never claims more than exists.
 *  e: an entry was written to part `part`, whose partial file is now `end` bytes
 *  i: item `item` (index within the job) is finished; its entries came before
 *  c: part `part` is complete (end-of-archive written and synced) and may be renamed
 */
export type JournalRecord =
  | { t: 'e'; part: number; end: number; index: IndexEntry }
  | { t: 'i'; item: number; totals: Totals; failure?: PrepFailure }
  | { t: 'c'; part: number };

/** What a journal says has been done. */
export interface JournalState {
  entries: IndexEntry[];
  itemsDone: Array<{ totals: Totals; failure?: PrepFailure }>;
  /** entries of the next, unfinished item already written */
  partialItemEntries: number;
  /** last part touched, its journaled size, and whether it was completed */
  part: number;
  partSize: number;
  partClosed: boolean;
  /** bytes of the journal that parsed; a torn tail beyond them is cut before appending */
  validBytes: number;
}

export async function readJournal(path: string): Promise<JournalState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  const state: JournalState = { entries: [], itemsDone: [], partialItemEntries: 0, part: -1, partSize: 0, partClosed: true, validBytes: 0 };
  const lines = text.split('\n');
  lines.pop(); // whatever follows the last newline is empty or torn
  for (const line of lines) {
    let r: JournalRecord;
    try {
      r = JSON.parse(line);
    } catch {
      break; // a torn last line (killed mid-append): everything before it stands
    }
    state.validBytes += Buffer.byteLength(line) + 1;
    if (r.t === 'e') {
      state.entries.push(r.index);
      state.partialItemEntries++;
      state.part = r.part;
      state.partSize = r.end;
      state.partClosed = false;
    } else if (r.t === 'i') {
      state.itemsDone.push({ totals: r.totals, ...(r.failure ? { failure: r.failure } : {}) });
      state.partialItemEntries = 0;
    } else if (r.t === 'c') {
      state.partClosed = true;
    }
  }
  return state;
}

export class JournalWriter {
  private constructor(private readonly path: string) {}

  static async open(path: string): Promise<JournalWriter> {
    await appendFile(path, '');
    return new JournalWriter(path);
  }

  /** Appends records and makes them durable. */
  async append(records: JournalRecord[]): Promise<void> {
    if (!records.length) return;
    const fh = await open(this.path, 'a');
    try {
      await fh.write(records.map((r) => JSON.stringify(r) + '\n').join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
