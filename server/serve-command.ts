import { ConfigError, parseServerArgs, serverUsage } from './config.js';
import { startServer } from './main.js';
import { RelayStartError } from './rooms/redis-relay.js';

/** `tokstream serve [options]`: runs until SIGINT/SIGTERM. */
export async function runServe(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(serverUsage());
    return 0;
  }
  let config;
  try {
    config = parseServerArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`tokstream serve: ${e.message}`);
      return 2;
    }
    throw e;
  }
  try {
    await startServer(config, { handleSignals: true });
  } catch (e) {
    if (e instanceof RelayStartError) {
      console.error(`tokstream serve: ${e.message}`);
      return 1;
    }
    throw e;
  }
  return await new Promise<number>(() => {}); // the signal handlers end the process
}
