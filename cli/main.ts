import { EXIT, failure } from './exit.js';
import { USAGE } from './usage.js';

interface Command {
  run(args: string[]): Promise<number>;
}

// loaded on use: `serve` brings fastify, `prep` bullmq, the codec commands onnxruntime
const COMMANDS: Record<string, () => Promise<Command>> = {
  encode: () => import('./encode.js'),
  decode: () => import('./decode.js'),
  info: () => import('./info.js'),
  models: () => import('./models.js'),
  serve: () => import('./serve.js'),
  prep: () => import('./prep.js'),
};

/** `tokstream <command> ...`; returns the exit code (cli/exit.ts). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    console.error(`tokstream: unknown command "${command}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  try {
    return await (await COMMANDS[command]()).run(rest);
  } catch (e) {
    const { code, message } = failure(e, command);
    console.error(message);
    return code;
  }
}
