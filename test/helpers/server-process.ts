import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ensureBuilt, ROOT } from './prep.js';
import { defaultOnlyModelsDir } from './stream-harness.js';

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  /** Resolves with the exit status once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/**
 * A real `tokstream serve` process (bin/tokstream.js -> dist/) on a random loopback port, with the
 * default model only; resolves once it listens.
 */
export async function spawnServer(args: string[] = [], env: Record<string, string> = {}): Promise<ServerProcess> {
  ensureBuilt();
  const child = spawn(process.execPath, [
    join(ROOT, 'bin', 'tokstream.js'), 'serve', '--host', '127.0.0.1', '--port', '0', '--no-auth', '--no-demo', '--log-level', 'warn',
    '--threads', '1', '--models-dir', defaultOnlyModelsDir(), ...args,
  ], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${out}`)), 60_000);
    const look = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr!.on('data', look);
    void exited.then((e) => reject(new Error(`server exited (${e.code ?? e.signal}) before listening:\n${out}`)));
  });
  return { child, url, wsUrl: `${url.replace('http', 'ws')}/v1/stream`, exited, output: () => out };
}

/** A TCP port free on 127.0.0.1 right now (for programs that cannot be told to pick one, like haproxy). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function readyz(url: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Waits until `check` returns true (polled every 100 ms). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
