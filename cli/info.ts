import { createReadStream } from 'node:fs';
import { openTok, verifyTok, type TokFormatErrorCode, type TokHeader } from '../codec/tokfile.js';
import { EXIT } from './exit.js';
import { inputFile } from './files.js';
import { parseCommandArgs, positional, printUsage } from './model-options.js';

/** `tokstream info <in.tok> [--json] [--fast]`: what a .tok holds and the first problem in it (exit 3). */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' }, fast: { type: 'boolean' } });
  if (values.help) return printUsage();
  const input = await inputFile(positional(positionals, 1, 'one input .tok file'));
  const file = values.fast ? await headerAndIndex(input) : await verifyTok(createReadStream(input), { allowDamaged: true });
  const h: TokHeader = file.header;
  const problem = file.problem ? { code: file.problem.code as TokFormatErrorCode, offset: file.problem.offset, message: file.problem.message } : undefined;
  const info = {
    file: input,
    checked: values.fast ? 'header, index and footer (--fast: chunks not read)' : 'every byte',
    version: `${h.version.major}.${h.version.minor}`,
    model: h.modelName,
    modelSha256: h.modelSha256,
    sampleRate: h.sampleRate,
    hopLength: h.hopLength,
    frameRate: h.sampleRate / h.hopLength,
    codebooks: h.numCodebooks,
    codebookSize: h.codebookSize,
    bitsPerCode: h.bitsPerCode,
    frames: file.totalFrames,
    durationSec: file.totalFrames / (h.sampleRate / h.hopLength),
    originalSampleRate: h.originalSampleRate,
    originalLength: file.originalLength,
    complete: file.complete,
    problem,
    metadata: h.metadata,
  };
  if (values.json) console.log(JSON.stringify(info, null, 2));
  else {
    for (const [k, v] of Object.entries(info)) {
      if (v === undefined) continue;
      const text = k === 'problem' && problem ? problem.message : typeof v === 'object' ? JSON.stringify(v) : v;
      console.log(`${k.padEnd(19)} ${text}`);
    }
  }
  return file.complete ? EXIT.ok : EXIT.input;
}

/** --fast: the header, the footer and the index, as a seeking reader sees them; chunks are not read. */
async function headerAndIndex(input: string) {
  const file = await openTok(input, { allowTruncated: true });
  await file.close();
  return file;
}
