import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { modelForTok } from '../codec/index.js';
import { OUTPUT_FORMATS, encodeAudioStream, type OutputFormat } from '../codec/audio-output.js';
import { readTokStream, verifyTok } from '../codec/tokfile.js';
import type { TokenBlock } from '../codec/pure/types.js';
import { EXIT } from './exit.js';
import { inputFile, withOutput } from './files.js';
import { loadModel, parseCommandArgs, positional, printUsage } from './model-options.js';
import { Progress } from './progress.js';
import { UsageError } from './usage.js';

/** `tokstream decode <in.tok> -o <out.wav|.flac|.ogg|.mp3>`: the whole file is checked before any decoding. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { output: { type: 'string', short: 'o' }, format: { type: 'string' } });
  if (values.help) return printUsage();
  const input = positional(positionals, 1, 'one input .tok file');
  if (!values.output) throw new UsageError('missing -o <out.wav>');
  const output = values.output;
  const format = (values.format ?? extname(output).slice(1).toLowerCase()) as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new UsageError(`output format "${format}" not one of ${OUTPUT_FORMATS.join(', ')}`);
  await inputFile(input);
  return withOutput(output, async (out) => {
    // every byte is checked before any decoding; the footer says how long the original was
    const { header, originalLength } = await verifyTok(createReadStream(input));
    const total = originalLength === null ? undefined : Math.round((originalLength * header.sampleRate) / header.originalSampleRate);
    // the file's model hash picks the version: an older one kept loaded decodes the files it wrote
    const model = await loadModel(values, (registry) => modelForTok(registry, header, values.model));
    try {
      const progress = new Progress('decode', total === undefined ? undefined : total / header.sampleRate);
      let written = 0;
      async function* blocks(): AsyncGenerator<TokenBlock> {
        for await (const ev of readTokStream(createReadStream(input))) if (ev.type === 'tokens') yield ev.tokens;
      }
      async function* pcm(): AsyncGenerator<Float32Array> {
        for await (let chunk of model.decodeStream(blocks())) {
          if (total !== undefined) chunk = chunk.subarray(0, Math.max(0, total - written));
          written += chunk.length;
          progress.update(written / header.sampleRate);
          if (chunk.length) yield chunk;
        }
      }
      for await (const bytes of encodeAudioStream(pcm(), { format, sampleRate: header.sampleRate, totalSamples: total })) await out.write(bytes);
      progress.done();
      console.error(`decoded ${(written / header.sampleRate).toFixed(2)} s at ${header.sampleRate} Hz with model ${model.name} ${model.manifest.version} -> ${output}`);
      return EXIT.ok;
    } finally {
      await model.release();
    }
  });
}

