import { HttpApiError } from './errors.js';

export interface JobParams {
  model?: string;
  codebooks?: number;
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Query parameters (already schema-validated) completed by multipart form fields,
 * which get the same checks here; the two may not disagree.
 */
export function jobParams(query: JobParams, fields: Record<string, string>): JobParams {
  const out: JobParams = { ...query };
  if (fields.model !== undefined) {
    if (!MODEL_NAME.test(fields.model)) throw new HttpApiError(400, 'invalid_request', `field model: invalid model name ${JSON.stringify(fields.model)}`);
    if (query.model !== undefined && query.model !== fields.model) throw conflict('model');
    out.model = fields.model;
  }
  if (fields.codebooks !== undefined) {
    const n = Number(fields.codebooks);
    if (!/^\d{1,2}$/.test(fields.codebooks) || n < 1 || n > 64) throw new HttpApiError(400, 'invalid_request', 'field codebooks must be an integer in 1..64');
    if (query.codebooks !== undefined && query.codebooks !== n) throw conflict('codebooks');
    out.codebooks = n;
  }
  return out;
}

/**
 * `codebooks` checked against what it selects from (the model's codebooks, or the file's): out of
 * range is the request's fault, like any other bad parameter (1..64 and integer-ness are checked
 * by the schema and `jobParams`). Default: all of them.
 */
export function codebooksWithin(requested: number | undefined, max: number, of: string): number {
  if (requested === undefined) return max;
  if (requested > max) throw new HttpApiError(400, 'invalid_request', `codebooks must be 1..${max} for ${of}, got ${requested}`);
  return requested;
}

function conflict(name: string): HttpApiError {
  return new HttpApiError(400, 'invalid_request', `${name} given in both the query and the form, with different values`);
}
