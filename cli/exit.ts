import { CodecError } from '../codec/pure/errors.js';
import { TokFormatError } from '../codec/tok/errors.js';
import { InputError } from '../prep/inputs.js';
import { PlanMismatchError, PlanReadError } from '../prep/plan.js';
import { PREP_USAGE, UsageError } from './usage.js';

/** The exit codes (README): 0 ok, 1 unexpected (a bug), 2 usage, 3 bad input, 4 model missing or broken. */
export const EXIT = { ok: 0, bug: 1, usage: 2, input: 3, model: 4 } as const;

/** `tokstream prep` keeps the codes its help and docs/prep.md give: a corpus run reports, it does not stop at one input. */
export const PREP_EXIT = { done: 0, error: 1, usage: 2, unfinished: 3 } as const;

export interface Failure {
  code: number;
  /** for stderr: one line, but for prep's usage (which follows its message) and a bug's stack trace */
  message: string;
}

/** The one place an error thrown by a command becomes an exit code and what the user reads. */
export function failure(e: unknown, command: string): Failure {
  if (e instanceof UsageError) {
    if (command === 'prep') return { code: PREP_EXIT.usage, message: `tokstream prep: ${e.message}\n\n${PREP_USAGE.trimEnd()}` };
    if (command === 'serve') return { code: EXIT.usage, message: `tokstream serve: ${e.message}` };
    return { code: EXIT.usage, message: `tokstream: ${e.message} (tokstream --help for usage)` };
  }
  if (command === 'prep') {
    if (e instanceof InputError || e instanceof PlanMismatchError || e instanceof PlanReadError) return { code: PREP_EXIT.usage, message: `prep: error: ${e.message}` };
    if (e instanceof CodecError) return { code: PREP_EXIT.error, message: `prep: error: ${e.message}` };
  }
  if (e instanceof TokFormatError) return { code: EXIT.input, message: `tokstream: invalid token file (${e.code}): ${e.message}` };
  if (e instanceof CodecError) {
    return { code: e.code === 'model_broken' || e.code === 'model_not_found' ? EXIT.model : EXIT.input, message: `tokstream: ${e.code}: ${e.message}` };
  }
  return { code: EXIT.bug, message: `tokstream: ${(e as Error)?.stack ?? e}` };
}
