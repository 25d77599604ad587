import type { FastifyInstance } from 'fastify';
import { openAudio } from '../../codec/audio-input.js';
import { CodecError, isCodecError } from '../../codec/pure/errors.js';
import { findModel, jobHooks, type RouteDeps } from './deps.js';
import { encodeToTok } from './encode-job.js';
import { jobOf, startStream } from './job-context.js';
import { TOK_MEDIA_TYPE } from './openapi.js';
import { codebooksWithin, jobParams, type JobParams } from './params.js';
import { encodeSchema } from './schemas.js';
import { failWithUpload, prepareSource } from './spool.js';
import { openUpload } from './upload.js';

/** POST /v1/encode: audio in, .tok out, both streamed. */
export function registerEncodeRoute(app: FastifyInstance, deps: RouteDeps): void {
  const { config } = deps;
  app.post<{ Querystring: JobParams }>(
    '/v1/encode',
    { schema: encodeSchema, onRequest: jobHooks(deps) },
    async (request, reply) => {
      // a model named in the query is checked before a byte of the upload is read
      if (request.query.model !== undefined) findModel(deps, request.query.model);
      const job = jobOf(request);
      const upload = await openUpload(request, config.maxBodyBytes);
      const params = jobParams(request.query, upload.fields);
      const model = findModel(deps, params.model);
      const codebooks = codebooksWithin(params.codebooks, model.manifest.numCodebooks, `model "${model.name}"`);
      const prepared = await prepareSource(upload.bytes, { spoolDir: config.spoolDir, maxSpoolBytes: Math.min(config.maxSpoolBytes, config.maxBodyBytes), signal: job.signal });
      job.onFinish(prepared.cleanup);
      const spooled = 'path' in prepared.source;
      const audio = await openAudio(prepared.source, {
        sampleRate: model.manifest.sampleRate,
        maxDurationSec: config.maxDurationSec,
        signal: job.signal,
        ffmpegTimeoutMs: config.ffmpegTimeoutMs,
      }).catch((e: unknown) => {
        throw prepared.uploadError() ?? (spooled ? damagedContainer(e) : e);
      });
      // a WAV header that states its size lets an over-long upload be refused before anything is encoded
      if (audio.durationSec !== undefined && audio.durationSec > config.maxDurationSec) {
        throw new CodecError('limit_exceeded', `audio is ${audio.durationSec.toFixed(1)} s, longer than the ${config.maxDurationSec} s limit`);
      }
      const tok = await startStream(
        encodeToTok({
          manifest: model.manifest,
          batcher: deps.batcherFor(model),
          pcm: failWithUpload(audio.pcm, prepared.uploadError, spooled ? damagedContainer : undefined),
          originalSampleRate: audio.sourceRate ?? model.manifest.sampleRate,
          sourceSamples: audio.sourceSamples,
          codebooks,
          chunkFrames: config.chunkFrames,
          jobId: job.id,
          signal: job.signal,
        }),
      );
      return reply
        .type(TOK_MEDIA_TYPE)
        .header('content-disposition', `attachment; filename="${tokFileName(upload.filename)}"`)
        .header('x-tokstream-model', model.name)
        .header('x-tokstream-codebooks', String(codebooks))
        .send(job.responseBody(tok));
    },
  );
}

/** The upload's base name with .tok, reduced to safe characters for a header. */
function tokFileName(uploaded: string | undefined): string {
  const base = (uploaded ?? 'audio').replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return `${base || 'audio'}.tok`;
}

/** Bytes that start like an mp4 but that ffmpeg cannot open are a damaged (e.g. cut-off) file, not foreign media. */
function damagedContainer(e: unknown): unknown {
  if (!isCodecError(e) || e.code !== 'unsupported_media') return e;
  return new CodecError('undecodable_audio', `damaged or incomplete mp4/m4a: ${e.message}`, { cause: e });
}
