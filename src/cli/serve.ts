// `wharf serve`: runs the hub until SIGINT/SIGTERM.
import { pino } from 'pino';
import { loadConfig, splitListen } from '../config.js';
import { openWharf } from '../wharf.js';
import { createHttpServer, listen } from '../server/server.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';

const HELP = `usage: wharf serve [--listen HOST:PORT] [--data DIR] [--config FILE] [--log-level LEVEL]

  --listen     address to listen on (env WHARF_LISTEN, default 127.0.0.1:5000)
  --data       data directory (env WHARF_DATA, default ./data)
  --config     YAML config file (env WHARF_CONFIG)
  --log-level  fatal|error|warn|info|debug|trace (env WHARF_LOG_LEVEL, default info)`;

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    listen: { type: 'string' },
    data: { type: 'string' },
    config: { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  let config;
  try {
    config = loadConfig({ flags: { listen: values.listen, data: values.data, config: values.config, logLevel: values['log-level'] } });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  const log = pino({ level: config.log.level, base: { service: 'wharf' } });
  const wharf = await openWharf(config);
  const server = createHttpServer({ wharf, log });
  const { host, port } = splitListen(config.listen);
  const running = await listen(server, host, port);

  const sweep = async () => {
    const removed = await wharf.blobs.expireUploads(Date.now() - config.uploads.ttl);
    if (removed > 0) log.info({ removed }, 'expired upload sessions removed');
  };
  await sweep();
  const sweeper = setInterval(() => sweep().catch((err) => log.error({ err }, 'upload sweep failed')), config.uploads.sweepInterval);
  sweeper.unref();

  log.info({ url: running.url, data: config.data }, 'listening');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(sweeper);
  await running.close();
  await wharf.close();
  log.info('stopped');
  return 0;
}
