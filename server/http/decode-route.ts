import type { FastifyInstance } from 'fastify';
import { encodeAudioStream, OUTPUT_MEDIA_TYPES } from '../../codec/audio-output.js';
import { CodecError } from '../../codec/pure/errors.js';
import type { CodecModel } from '../../codec/model.js';
import { modelForTok } from '../../codec/registry.js';
import type { TokHeader } from '../../codec/tokfile.js';
import { decodeTokToPcm, receiveTok } from './decode-job.js';
import { findModel, jobHooks, type RouteDeps } from './deps.js';
import { chooseOutputFormat, type FormatParam } from './format.js';
import { jobOf, startStream } from './job-context.js';
import { codebooksWithin, jobParams, type JobParams } from './params.js';
import { decodeSchema } from './schemas.js';
import { openUpload } from './upload.js';

/** POST /v1/decode: .tok in, audio out, both streamed. */
export function registerDecodeRoute(app: FastifyInstance, deps: RouteDeps): void {
  const { config } = deps;
  app.post<{ Querystring: JobParams & { format?: FormatParam } }>(
    '/v1/decode',
    { schema: decodeSchema, onRequest: jobHooks(deps) },
    async (request, reply) => {
      const format = chooseOutputFormat(request.query.format, request.headers.accept);
      if (request.query.model !== undefined) findModel(deps, request.query.model);
      const job = jobOf(request);
      const upload = await openUpload(request, config.maxBodyBytes);
      const params = jobParams(request.query, upload.fields);
      // the header is checked against the model as soon as it arrives, before the rest is read
      const chosen: { target?: DecodeTarget } = {};
      const tok = await receiveTok(upload.bytes, {
        onHeader: (header) => (chosen.target = decodeTarget(deps, header, params)),
        onChunk: (chunk) => {
          if (chunk.firstFrame + chunk.numFrames > chosen.target!.maxFrames) {
            throw new CodecError('limit_exceeded', `.tok holds more than the ${config.maxDurationSec} s limit`);
          }
        },
      });
      job.onFinish(() => tok.events.return());
      const { model, codebooks } = chosen.target!;
      const pcm = await startStream(
        decodeTokToPcm({ manifest: model.manifest, batcher: deps.batcherFor(model), tok, codebooks, chunkFrames: config.chunkFrames, jobId: job.id, signal: job.signal }),
      );
      const audio = await startStream(
        encodeAudioStream(pcm, {
          format,
          sampleRate: model.manifest.sampleRate,
          bitrate: format === 'mp3' ? config.mp3Bitrate : config.opusBitrate,
          signal: job.signal,
          timeoutMs: config.ffmpegTimeoutMs,
        }),
      );
      return reply
        .type(OUTPUT_MEDIA_TYPES[format])
        .header('x-tokstream-model', model.name)
        .header('x-tokstream-model-version', model.manifest.version)
        .header('x-tokstream-codebooks', String(codebooks))
        .header('x-tokstream-sample-rate', String(model.manifest.sampleRate))
        .send(job.responseBody(audio));
    },
  );
}

interface DecodeTarget {
  model: CodecModel;
  codebooks: number;
  /** frames within maxDurationSec */
  maxFrames: number;
}

/** The model version a .tok header names by its hash (or the one named), checked against the file. */
function decodeTarget(deps: RouteDeps, header: TokHeader, params: JobParams): DecodeTarget {
  // an older version kept loaded decodes the files it wrote
  const model = modelForTok({ models: deps.models, versions: deps.versions ?? [...deps.models.values()] }, header, params.model);
  const codebooks = codebooksWithin(params.codebooks, header.numCodebooks, 'this .tok');
  return { model, codebooks, maxFrames: Math.floor((deps.config.maxDurationSec * model.manifest.sampleRate) / model.manifest.hopLength) };
}
