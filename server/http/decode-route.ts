import type { FastifyInstance } from 'fastify';
import { encodeAudioStream, OUTPUT_MEDIA_TYPES } from '../../codec/audio-output.js';
import { CodecError } from '../../codec/errors.js';
import { modelForTok } from '../../codec/registry.js';
import { decodeTokToPcm, openTokUpload } from './decode-job.js';
import { findModel, type RouteDeps } from './deps.js';
import { chooseOutputFormat, type FormatParam } from './format.js';
import { byteStream, JobContext, startStream } from './job-context.js';
import { jobParams, type JobParams } from './params.js';
import { decodeSchema } from './schemas.js';
import { openUpload } from './upload.js';

/** POST /v1/decode: .tok in, audio out, both streamed. */
export function registerDecodeRoute(app: FastifyInstance, deps: RouteDeps): void {
  const { config } = deps;
  app.post<{ Querystring: JobParams & { format?: FormatParam } }>(
    '/v1/decode',
    { schema: decodeSchema, ...(deps.authenticate ? { preHandler: deps.authenticate } : {}) },
    async (request, reply) => {
      const format = chooseOutputFormat(request.query.format, request.headers.accept);
      if (request.query.model !== undefined) findModel(deps, request.query.model);
      const job = new JobContext(reply, deps.slots);
      const upload = await openUpload(request, config.maxBodyBytes);
      const params = jobParams(request.query, upload.fields);
      const tok = await openTokUpload(upload.bytes);
      job.onFinish(() => tok.events.return());
      const { header } = tok;
      // The file's model hash picks the version: an older one kept loaded decodes the files it wrote.
      const model = modelForTok({ models: deps.models, versions: deps.versions ?? [...deps.models.values()] }, header, params.model);
      const codebooks = params.codebooks ?? header.numCodebooks;
      if (codebooks > header.numCodebooks) {
        throw new CodecError('model_mismatch', `codebooks=${codebooks} but the file holds ${header.numCodebooks}`);
      }
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
        .send(byteStream(audio));
    },
  );
}
