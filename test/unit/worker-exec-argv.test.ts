/** codec/worker-calls.ts: which of the process's Node options a worker thread is started with. */
import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../../codec/worker-calls.js';

describe('workerExecArgv', () => {
  it('drops the main script\'s own source options, in both spellings, and keeps the rest', () => {
    expect(workerExecArgv(['--input-type=module', '-e', 'code', '--max-old-space-size=512'])).toEqual(['--max-old-space-size=512']);
    expect(workerExecArgv(['--input-type', 'module', '--eval', 'code', '--enable-source-maps'])).toEqual(['--enable-source-maps']);
    expect(workerExecArgv(['-p', '1+1', '--print=2', '--eval=x', '--cpu-prof'])).toEqual(['--cpu-prof']);
    expect(workerExecArgv([])).toEqual([]);
  });
});
