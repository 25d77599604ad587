import { FORMAT_PARAM_VALUES } from './format.js';

/** JSON schemas of the routes: validation (fastify/ajv) and the OpenAPI document come from the same objects. */

const modelName = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'model name (GET /v1/models)' } as const;
const codebooks = { type: 'integer', minimum: 1, maximum: 64 } as const;

export const errorSchema = {
  $id: 'tokstreamHttpError',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

const errorRef = { $ref: 'tokstreamHttpError#' } as const;

function errors(...statuses: number[]): Record<number, typeof errorRef> {
  return Object.fromEntries(statuses.map((s) => [s, errorRef]));
}

export const encodeSchema = {
  summary: 'Encode audio to a .tok token file',
  description:
    'Body: the audio file as the raw request body (any content type; any format ffmpeg reads) or as the first file part of ' +
    'multipart/form-data (fields `model` and `codebooks` may precede the file part). The .tok is streamed while the upload is ' +
    'still arriving. mp4/m4a/mov are spooled to a temporary file first (they need seeking).',
  tags: ['batch'],
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      model: { ...modelName, description: 'model to encode with (default: the server default model)' },
      codebooks: { ...codebooks, description: 'keep the first N codebooks (default: all of the model)' },
    },
  },
  response: {
    200: { description: 'a .tok file (docs/tok-format.md), content type application/vnd.tokstream.tok', type: 'string', format: 'binary' },
    ...errors(400, 401, 413, 415, 422, 500, 503, 504),
  },
} as const;

export const decodeSchema = {
  summary: 'Decode a .tok token file to audio',
  description:
    'Body: a .tok file (raw body or first file part of multipart/form-data), streamed in. The output is streamed out at the ' +
    "model's sample rate: WAV (16-bit, default), FLAC, Ogg/Opus or MP3, chosen by `format` or the Accept header.",
  tags: ['batch'],
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      model: { ...modelName, description: 'expected model; the file names its own and must match' },
      codebooks: { ...codebooks, description: 'decode with the first N codebooks of the file (default: all in the file)' },
      format: { type: 'string', enum: [...FORMAT_PARAM_VALUES], description: 'output container (overrides Accept); opus = ogg' },
    },
  },
  response: {
    200: { description: 'audio/wav, audio/flac, audio/ogg or audio/mpeg', type: 'string', format: 'binary' },
    ...errors(400, 401, 406, 413, 415, 422, 500, 503, 504),
  },
} as const;

const manifestSchema = { type: 'object', additionalProperties: true, description: 'manifest.json (docs/model-contract.md)' } as const;

const modelItemSchema = {
  type: 'object',
  required: ['name', 'version', 'sampleRate', 'frameRate', 'numCodebooks', 'codebookSize', 'provider', 'bitrates', 'manifest'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    sampleRate: { type: 'integer' },
    frameRate: { type: 'number' },
    numCodebooks: { type: 'integer' },
    codebookSize: { type: 'integer' },
    causal: { type: 'boolean' },
    provider: { type: 'string', enum: ['cpu', 'cuda'] },
    fallbackReason: { type: 'string' },
    hash: { type: 'string', description: 'identity of the token space (sha256 over both graph hashes), as recorded in .tok headers' },
    bitrates: {
      type: 'array',
      items: {
        type: 'object',
        properties: { codebooks: { type: 'integer' }, bitsPerSecond: { type: 'number' } },
      },
    },
    manifest: manifestSchema,
  },
} as const;

export const modelsSchema = {
  summary: 'Loaded models, their bitrates and execution provider, and model folders that failed to load',
  tags: ['models'],
  querystring: { type: 'object', additionalProperties: false, properties: {} },
  response: {
    200: {
      type: 'object',
      required: ['models', 'broken'],
      properties: {
        models: { type: 'array', items: modelItemSchema },
        olderVersions: {
          type: 'array',
          description: 'older versions kept loaded: POST /v1/decode picks one when a .tok names its hash',
          items: modelItemSchema,
        },
        broken: {
          type: 'array',
          items: { type: 'object', properties: { folder: { type: 'string' }, error: { type: 'string' } } },
        },
      },
    },
    ...errors(401, 500),
  },
} as const;
