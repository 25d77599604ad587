/**
 * The CLI's one option parser (cli/usage.ts) and the one error -> exit code mapping (cli/exit.ts),
 * without spawning a process; test/integration/cli-exit-codes.test.ts checks the same contract end to end.
 */
import { describe, expect, it } from 'vitest';
import { EXIT, PREP_EXIT, failure } from '../../cli/exit.js';
import { UsageError, parseOptions } from '../../cli/usage.js';
import { CodecError } from '../../codec/pure/errors.js';
import { TokFormatError } from '../../codec/tok/errors.js';
import { InputError } from '../../prep/inputs.js';
import { PlanMismatchError } from '../../prep/plan.js';

const OPTIONS = { out: { type: 'string', short: 'o' }, 'vad-threshold-db': { type: 'string' }, quiet: { type: 'boolean' } } as const;

function usageMessage(args: string[], positionals = false): string {
  try {
    parseOptions(args, OPTIONS, positionals);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`${args.join(' ')} parsed`);
}

describe('parseOptions', () => {
  it('reads long, short, inline and negative values, and flags', () => {
    expect(parseOptions(['--out', 'a', '--vad-threshold-db', '-40', '--quiet'], OPTIONS).values).toEqual({ out: 'a', 'vad-threshold-db': '-40', quiet: true });
    expect(parseOptions(['-o', 'b', '--vad-threshold-db=-3.5'], OPTIONS).values).toEqual({ out: 'b', 'vad-threshold-db': '-3.5' });
    expect(parseOptions(['x', '--out', 'a', 'y'], OPTIONS, true).positionals).toEqual(['x', 'y']);
  });

  it('refuses what it does not know, one short line each', () => {
    expect(usageMessage(['--bogus'])).toBe('unknown option --bogus');
    expect(usageMessage(['--bogus=1'])).toBe('unknown option --bogus');
    expect(usageMessage(['-x'])).toBe('unknown option -x');
    expect(usageMessage(['--out'])).toBe('--out needs a value');
    expect(usageMessage(['-o'])).toBe('-o needs a value');
    expect(usageMessage(['--quiet=yes'])).toBe('--quiet takes no value');
    expect(usageMessage(['stray'])).toBe('unexpected argument "stray"');
    expect(usageMessage(['--toString'])).toBe('unknown option --toString');
  });
});

describe('failure: typed errors -> exit code and message', () => {
  const cases: [unknown, string, number, RegExp][] = [
    [new UsageError('missing -o <out.tok>'), 'encode', EXIT.usage, /^tokstream: missing -o <out\.tok> \(tokstream --help for usage\)$/],
    [new UsageError('--port must be a number'), 'serve', EXIT.usage, /^tokstream serve: --port must be a number$/],
    [new UsageError('--input is required'), 'prep', PREP_EXIT.usage, /^tokstream prep: --input is required\n\ntokstream prep: audio corpus/],
    [new TokFormatError('chunk_crc', 'chunk 0 CRC mismatch'), 'decode', EXIT.input, /^tokstream: invalid token file \(chunk_crc\): /],
    [new CodecError('unsupported_media', 'not audio'), 'encode', EXIT.input, /^tokstream: unsupported_media: not audio$/],
    [new CodecError('model_not_found', 'no model "x"'), 'encode', EXIT.model, /^tokstream: model_not_found: /],
    [new CodecError('model_broken', 'encoder.onnx: cannot read'), 'models', EXIT.model, /^tokstream: model_broken: /],
    [new InputError('cannot read input /x'), 'prep', PREP_EXIT.usage, /^prep: error: cannot read input \/x$/],
    [new PlanMismatchError('holds another run'), 'prep', PREP_EXIT.usage, /^prep: error: holds another run$/],
    [new CodecError('model_broken', 'sha256 differs'), 'prep', PREP_EXIT.error, /^prep: error: sha256 differs$/],
    [new TypeError('x is undefined'), 'encode', EXIT.bug, /^tokstream: TypeError: x is undefined\n\s+at /],
  ];
  it.each(cases)('%s in %s', (error, command, code, message) => {
    const f = failure(error, command);
    expect(f.code).toBe(code);
    expect(f.message).toMatch(message);
  });
});
