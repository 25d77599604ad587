import { bitrate, openAudio, type CodecModel } from '../codec/index.js';
import { TokWriter } from '../codec/tokfile.js';
import { EXIT } from './exit.js';
import { withOutput } from './files.js';
import { loadModel, parseCommandArgs, positional, printUsage } from './model-options.js';
import { Progress } from './progress.js';
import { UsageError } from './usage.js';

/** `tokstream encode <audio> -o <out.tok>`: audio -> a .tok file, streamed, written whole or not at all. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { output: { type: 'string', short: 'o' }, codebooks: { type: 'string', short: 'n' } });
  if (values.help) return printUsage();
  const input = positional(positionals, 1, 'one input audio file');
  if (!values.output) throw new UsageError('missing -o <out.tok>');
  const output = values.output;
  return withOutput(output, async (out) => {
    const model = await loadModel(values);
    try {
      const m = model.manifest;
      const codebooks = codebooksOption(values.codebooks, model);
      const audio = await openAudio({ path: input }, { sampleRate: m.sampleRate });
      const progress = new Progress('encode', audio.durationSec);
      let samples = 0;
      async function* counted() {
        for await (const chunk of audio.pcm) {
          samples += chunk.length;
          progress.update(samples / m.sampleRate);
          yield chunk;
        }
      }
      const writer = new TokWriter(
        {
          modelName: m.name,
          modelSha256: model.hash,
          sampleRate: m.sampleRate,
          hopLength: m.hopLength,
          numCodebooks: codebooks,
          codebookSize: m.codebookSize,
          originalSampleRate: audio.sourceRate ?? m.sampleRate,
        },
        (b) => out.write(b),
      );
      for await (const block of model.encodeStream(counted(), { codebooks })) await writer.write(block);
      await writer.finish({ originalLength: audio.sourceSamples() });
      progress.done();
      console.error(`encoded ${(samples / m.sampleRate).toFixed(2)} s -> ${writer.totalFrames} frames x ${codebooks} codebooks (${(bitrate(m, codebooks) / 1000).toFixed(2)} kbps) -> ${output}`);
      return EXIT.ok;
    } finally {
      await model.release();
    }
  });
}

/** --codebooks: an integer 1..the model's count, else a usage error naming the range. */
function codebooksOption(raw: string | undefined, model: CodecModel): number {
  const max = model.manifest.numCodebooks;
  if (raw === undefined) return max;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--codebooks must be an integer from 1 to ${max} for model "${model.name}", got "${raw}"`);
  }
  return n;
}
