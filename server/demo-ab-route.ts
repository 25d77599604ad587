import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { openAudio } from '../codec/audio-input.js';
import { bitrate } from '../codec/manifest.js';
import type { CodecModel } from '../codec/model.js';
import { concat } from '../codec/resample.js';
import { encodeWav } from '../codec/wav.js';
import { HTML, JS } from './static-files.js';

/** The bitrates the page compares (bit/s); each model version codes at the most codebooks that fit. */
const TARGET_BPS = [1500, 6000];

interface AbClip {
  id: string;
  file: string;
  source: string;
  from: string;
}

/**
 * /demo/ab/: reference vs every loaded version of the default model at 1.5 and 6 kbps, on a few held-out
 * clips shipped in server/demo/ab/. Each decoding is made on first request (encode + decode, under a
 * second per clip) and kept in memory: a fixed, small set, whatever versions are loaded.
 */
export async function registerAbDemo(app: FastifyInstance, demoDir: string): Promise<void> {
  const abDir = `${demoDir}ab/`;
  const clips: AbClip[] = JSON.parse(await readFile(`${abDir}clips.json`, 'utf8'));
  const { registry, defaultModel } = app.tokstream;
  const versions = registry.versions.filter((m) => m.name === defaultModel).reverse(); // oldest first, current last
  const decoded = new Map<string, Promise<Buffer>>();
  const notFound = (reply: FastifyReply) => reply.code(404).send({ error: { code: 'not_found', message: 'no such clip, version or bitrate' } });

  app.get('/demo/ab', async (_req, reply) => reply.redirect('/demo/ab/'));
  app.get('/demo/ab/', async (_req, reply) => reply.type(HTML).send(await readFile(`${demoDir}ab.html`)));
  app.get('/demo/ab/ab.js', async (_req, reply) => reply.type(JS).send(await readFile(`${demoDir}ab.js`)));
  app.get('/demo/ab/clips.json', async () => ({
    clips: clips.map((c) => ({ id: c.id, source: c.source, from: c.from, reference: `audio/${c.id}.flac` })),
    versions: versions.map((m) => ({
      name: m.name,
      version: m.manifest.version,
      current: registry.models.get(m.name) === m,
      codings: codingsOf(m).map((k) => ({ codebooks: k, kbps: bitrate(m.manifest, k) / 1000, audio: `audio/${m.manifest.version}/${k}/` })),
    })),
  }));
  app.get<{ Params: { clip: string } }>('/demo/ab/audio/:clip', async (req, reply) => {
    const clip = clips.find((c) => `${c.id}.flac` === req.params.clip);
    if (!clip) return notFound(reply);
    return reply.type('audio/flac').send(await readFile(`${abDir}${clip.file}`));
  });
  app.get<{ Params: { version: string; codebooks: string; clip: string } }>('/demo/ab/audio/:version/:codebooks/:clip', async (req, reply) => {
    const model = versions.find((m) => m.manifest.version === req.params.version);
    const codebooks = Number(req.params.codebooks);
    const clip = clips.find((c) => `${c.id}.wav` === req.params.clip);
    if (!model || !clip || !codingsOf(model).includes(codebooks)) return notFound(reply);
    const key = `${model.hash}/${codebooks}/${clip.id}`;
    let wav = decoded.get(key);
    if (!wav) {
      wav = codeClip(model, `${abDir}${clip.file}`, codebooks);
      decoded.set(key, wav);
      wav.catch(() => decoded.delete(key)); // a failure is retried on the next request
    }
    return reply.type('audio/wav').header('cache-control', 'no-cache').send(await wav);
  });
}

/** Codebook counts for the target bitrates: the most that fit each (at least one). */
function codingsOf(model: CodecModel): number[] {
  const m = model.manifest;
  const fit = (bps: number) => Math.max(1, ...Array.from({ length: m.numCodebooks }, (_, i) => i + 1).filter((k) => bitrate(m, k) <= bps));
  return [...new Set(TARGET_BPS.map(fit))];
}

/** The clip through the model's encoder and decoder at `codebooks`, as 16-bit WAV at the model rate. */
async function codeClip(model: CodecModel, path: string, codebooks: number): Promise<Buffer> {
  const rate = model.manifest.sampleRate;
  const input = await openAudio({ path }, { sampleRate: rate });
  const parts: Float32Array[] = [];
  for await (const chunk of input.pcm) parts.push(chunk);
  const pcm = concat(parts);
  const audio = await model.decode(await model.encode(pcm, rate, { codebooks }));
  return encodeWav(audio.subarray(0, pcm.length), rate);
}
