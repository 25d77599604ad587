import type { FastifyRequest } from 'fastify';
import type { MultipartFields } from '@fastify/multipart';
import { Readable, Transform } from 'node:stream';
import { HttpApiError } from './errors.js';

/** The bytes of an upload, as a stream, and whatever came with them. */
export interface Upload {
  bytes: Readable;
  /** Form fields sent before the file part (multipart only). */
  fields: Record<string, string>;
  mimetype?: string;
  filename?: string;
}

/**
 * The request body as a byte stream, never buffered: a raw body is the request
 * stream itself (see the pass-through content-type parser), a multipart body is
 * its first file part. Either way, more than `maxBytes` fails with 413.
 */
export async function openUpload(request: FastifyRequest, maxBytes: number): Promise<Upload> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  if (request.isMultipart()) {
    const part = await request.file({ limits: { fileSize: maxBytes, files: 1, fields: 16, fieldSize: 1024 }, throwFileSizeLimit: true });
    if (!part) throw new HttpApiError(400, 'invalid_request', 'multipart body has no file part');
    return { bytes: limitBytes(part.file, maxBytes), fields: fieldValues(part.fields), mimetype: part.mimetype, filename: part.filename };
  }
  // an empty body is empty input: the route's reader gives it its typed error (invalid_audio, invalid_tok)
  const body = (request.body as Readable | undefined) ?? Readable.from([]);
  if (typeof body.pipe !== 'function') throw new HttpApiError(400, 'invalid_request', 'request body is not a byte stream');
  return { bytes: limitBytes(body, maxBytes), fields: {}, mimetype: request.headers['content-type'] };
}

function fieldValues(fields: MultipartFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, entry] of Object.entries(fields)) {
    const first = Array.isArray(entry) ? entry[0] : entry;
    if (first?.type === 'field' && typeof first.value === 'string') out[name] = first.value;
  }
  return out;
}

function tooLarge(maxBytes: number): HttpApiError {
  return new HttpApiError(413, 'payload_too_large', `upload larger than the ${maxBytes}-byte limit`);
}

/** Passes bytes through until `maxBytes`, then fails the stream with 413 (chunked uploads declare no length). */
export function limitBytes(source: Readable, maxBytes: number): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > maxBytes) done(tooLarge(maxBytes));
      else done(null, chunk);
    },
  });
  source.on('error', (e) => counter.destroy(e));
  counter.on('close', () => {
    // when the consumer stops early, stop reading the socket/part as well
    if (!source.readableEnded) source.unpipe(counter);
  });
  return source.pipe(counter);
}
