import { ConfigError, parseServerArgs, serverUsage } from '../server/config.js';
import { startServer } from '../server/main.js';
import { RelayStartError } from '../server/rooms/redis-relay.js';
import { EXIT } from './exit.js';
import { UsageError } from './usage.js';

/** `tokstream serve [options]`: runs until SIGINT/SIGTERM. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(serverUsage());
    return EXIT.ok;
  }
  let config;
  try {
    config = parseServerArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  try {
    await startServer(config, { handleSignals: true });
  } catch (e) {
    if (e instanceof RelayStartError) throw new UsageError(e.message); // --redis-url names no usable Redis
    throw e;
  }
  return await new Promise<number>(() => {}); // the signal handlers end the process
}
