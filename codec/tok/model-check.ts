/** Refuses to decode tokens with a model other than the one that wrote them. */
import { CodecError } from '../pure/errors.js';
import type { TokHeader } from './types.js';

/** Tokens decoded with a model other than the one that wrote them. */
export class TokModelMismatchError extends CodecError {
  readonly mismatches: string[];
  constructor(message: string, mismatches: string[]) {
    super('model_mismatch', message);
    this.name = 'TokModelMismatchError';
    this.mismatches = mismatches;
  }
}

export interface TokModelIdentity {
  name: string;
  sha256: string;
  sampleRate?: number;
  hopLength?: number;
  codebookSize?: number;
  /** codebooks the model has; the file may use a leading subset */
  numCodebooks?: number;
}

/** Throws TokModelMismatchError unless the file was written by this model (same sha256) and fits its shape. */
export function assertTokMatchesModel(header: TokHeader, model: TokModelIdentity): void {
  const mismatches: string[] = [];
  if (header.modelSha256 !== model.sha256.toLowerCase()) mismatches.push('sha256');
  for (const field of ['sampleRate', 'hopLength', 'codebookSize'] as const) {
    const want = model[field];
    if (want !== undefined && header[field] !== want) mismatches.push(`${field} ${header[field]} vs ${want}`);
  }
  if (model.numCodebooks !== undefined && header.numCodebooks > model.numCodebooks) {
    mismatches.push(`file has ${header.numCodebooks} codebooks, model ${model.numCodebooks}`);
  }
  if (mismatches.length === 0) return;
  throw new TokModelMismatchError(
    `token file was written by model "${header.modelName}" (sha256 ${header.modelSha256}) but is being decoded with model ` +
      `"${model.name}" (sha256 ${model.sha256.toLowerCase()}): ${mismatches.join('; ')}`,
    mismatches,
  );
}
