import { Worker } from 'node:worker_threads';
import { CodecError, type CodecErrorCode } from './pure/errors.js';

/** A failure inside a worker thread, as it crosses back. */
export interface WireError {
  /** a CodecError's code */
  code?: string;
  message: string;
}

export function toWireError(e: unknown): WireError {
  return { code: e instanceof CodecError ? e.code : undefined, message: (e as Error).message ?? String(e) };
}

/** The buffers of typed arrays that own them whole: transferable without detaching anything else. */
export function transferables(arrays: Iterable<ArrayBufferView>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    if (a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) out.add(a.buffer);
  }
  return [...out];
}

/**
 * Request/reply calls to one worker thread (codec/<name>.js) that answers each `{ id, ... }` message
 * with `{ id, ... }` or `{ id, error }`. The thread keeps the process alive only while a call is in
 * flight; if it dies, every call in flight and later is rejected with a plain Error (no input is to
 * blame for it).
 */
export class WorkerCalls {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: object) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private broken: Error | undefined;
  /** Requests the thread has not answered yet, their callers rejected or not. */
  private unanswered = 0;
  private onAnswered: (() => void) | undefined;

  constructor(name: string, workerData: unknown) {
    this.worker = new Worker(workerFile(name), { workerData, execArgv: workerExecArgv(process.execArgv) });
    this.worker.unref();
    this.worker.on('message', (r: { id: number; error?: WireError }) => {
      if (--this.unanswered === 0) this.onAnswered?.();
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) this.worker.unref();
      if (r.error) p.reject(fromWireError(r.error));
      else p.resolve(r);
    });
    this.worker.on('error', (e) => this.fail(new Error(`${name} thread died: ${e.message}`)));
    this.worker.on('exit', (code) => {
      this.unanswered = 0;
      this.onAnswered?.();
      this.fail(new Error(`${name} thread exited with code ${code}`));
    });
  }

  /** False once the thread has died or been closed. */
  get alive(): boolean {
    return this.broken === undefined;
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  call<R extends { id: number }>(req: object, transfer: ArrayBuffer[] = []): Promise<R> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // a caller awaits: keep the process up until the reply
      this.pending.set(id, { resolve: resolve as (r: object) => void, reject });
      this.unanswered++;
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const p of this.pending.values()) p.reject(this.broken);
    this.pending.clear();
  }

  /**
   * Ends the thread; calls in flight are rejected at once. The thread itself is stopped only once it
   * has answered them: stopping it inside a native run (onnxruntime) aborts the whole process.
   */
  async close(reason = 'closed'): Promise<void> {
    this.fail(new Error(reason));
    if (this.unanswered > 0) {
      this.worker.ref(); // ends after the run, not with the process
      await new Promise<void>((done) => (this.onAnswered = done));
    }
    await this.worker.terminate();
  }
}

/**
 * The process's Node options for a worker thread, less those about the main script's own source
 * (`-e`/`-p` code, `--input-type`): a thread started with `--input-type` fails at once, so
 * `node --input-type=module -e '…'` could not run a model.
 */
export function workerExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '--input-type') i++;
    else if (!/^--(eval|print|input-type)=/.test(a)) out.push(a);
  }
  return out;
}

/** A CodecError where the thread's error carried a code, else a plain Error (as onnxruntime throws). */
function fromWireError(e: WireError): Error {
  return e.code ? new CodecError(e.code as CodecErrorCode, e.message) : new Error(e.message);
}

/**
 * A worker's compiled file: beside this one, or under dist/ when this module runs from its
 * TypeScript source (vitest), since a worker thread of Node 20 cannot load TypeScript.
 */
function workerFile(name: string): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL(`../dist/codec/${name}.js`, here) : new URL(`./${name}.js`, here);
}
