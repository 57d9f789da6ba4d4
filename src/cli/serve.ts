// `wharf serve`: runs the hub until SIGINT/SIGTERM.
import { loadConfig, splitListen } from '../config.js';
import { EmptyDatabaseError, openWharf } from '../wharf.js';
import { MigrationsPendingError, SchemaTooNewError } from '../metadata/schema-version.js';
import { listen, serveHub, startingServer } from '../server/server.js';
import { hubRoutes } from '../server/routes.js';
import { parseFlags } from './args.js';
import { readFileSync } from 'node:fs';
import { serveAuth } from '../server/access-control.js';
import { RegistryAudit } from '../server/registry-audit.js';
import { CliError } from './cli-error.js';
import { Reconciler } from '../deploy/reconciler.js';
import { GcSchedule } from '../delivery/gc-schedule.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAdmin, INITIAL_PASSWORD_FILE } from '../auth/bootstrap.js';
import { logAudit, serverLog } from './serve-log.js';

import { ScrubSchedule } from '../registry/blob-scrub.js';
import type { QuarantineEvent } from '../registry/blob-integrity.js';
import { dockerEngines } from '../engine/dockerode-engines.js';

/** The first scrub pass starts this long after the start (or one interval, if shorter); later ones one interval apart. */
const FIRST_SCRUB_DELAY = 10 * 60_000;

const HELP = `usage: wharf serve [--listen HOST:PORT] [--data DIR] [--db URL] [--config FILE] [--log-level LEVEL] [--log-format FORMAT]
                   [--tls-cert FILE --tls-key FILE] [--external-url URL] [--trusted-proxies LIST] [--init] [--migrate]

  --listen     address to listen on (env WHARF_LISTEN, default 127.0.0.1:5000)
  --data       data directory (env WHARF_DATA, default ./data)
  --db         metadata database: postgres://USER:PASSWORD@HOST:PORT/DB (env WHARF_DB; default: SQLite in the
               data directory, which applies its migrations by itself)
  --migrate    apply the PostgreSQL database's missing migrations before starting (else it is refused)
  --config     YAML config file (env WHARF_CONFIG)
  --log-level  fatal|error|warn|info|debug|trace (env WHARF_LOG_LEVEL, default info)
  --log-format pretty|json|auto: lines for people, or JSON lines (env WHARF_LOG_FORMAT; default auto:
               pretty on a terminal, JSON otherwise). Blob and manifest GETs log at WHARF_LOG_PULLS (info).
  --tls-cert   serve HTTPS with this PEM certificate chain (env WHARF_TLS_CERT; needs --tls-key)
  --tls-key    the certificate's PEM private key (env WHARF_TLS_KEY)
  --external-url  the URL clients use (e.g. behind a TLS proxy); sets the token realm (env WHARF_EXTERNAL_URL)
  --trusted-proxies  addresses or CIDR ranges of proxies in front (comma-separated, env WHARF_TRUSTED_PROXIES):
               their X-Forwarded-For and X-Forwarded-Proto are believed, nobody else's
  --init       start even though the database records no blob while the blob store holds some (a lost
               database: restore it instead if you can; the stored blobs then become orphans)

Authentication is on: the first start creates user admin (password from WHARF_ADMIN_PASSWORD, else
generated into <data>/initial-admin-password). WHARF_AUTH=off disables it, for local development only.`;

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    listen: { type: 'string' },
    data: { type: 'string' },
    db: { type: 'string' },
    config: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'external-url': { type: 'string' },
    'trusted-proxies': { type: 'string' },
    init: { type: 'boolean', default: false },
    migrate: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  let config;
  try {
    config = loadConfig({
      flags: {
        listen: values.listen,
        data: values.data,
        db: values.db,
        config: values.config,
        logLevel: values['log-level'],
        logFormat: values['log-format'],
        tlsCert: values['tls-cert'],
        tlsKey: values['tls-key'],
        externalUrl: values['external-url'],
        trustedProxies: values['trusted-proxies'],
      },
    });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  const log = serverLog(config.log);
  let tls;
  try {
    tls = config.tls && { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  } catch (e) {
    throw new CliError(`cannot read the TLS certificate or key: ${(e as Error).message}`, 2);
  }
  const registryAudit = new RegistryAudit();
  // The socket is bound before the hub is built: deploy targets pull from the address clients use (the external URL,
  // else the listening address, whose port --listen …:0 leaves to the kernel), and the hub takes it in its
  // constructor. Until serveHub below, a request is answered 503 (starting).
  const server = startingServer(log, tls);
  const { host, port } = splitListen(config.listen);
  const running = await listen(server, host, port);
  let wharf;
  const engines = dockerEngines();
  try {
    const events = { ...registryAudit.events, blobQuarantined: (e: QuarantineEvent) => log.error(e, 'blob quarantined: its bytes do not match its digest') };
    wharf = await openWharf(config, events, engines, {
      allowEmptyDatabase: values.init,
      migrate: values.migrate,
      onDatabaseError: (err) => log.warn({ err }, 'database connection error'),
      log,
      registryHost: new URL(config.externalUrl ?? running.url).host,
    });
  } catch (e) {
    await running.close();
    if (e instanceof EmptyDatabaseError || e instanceof SchemaTooNewError || e instanceof MigrationsPendingError) throw new CliError(`refusing to start: ${e.message}`, 1);
    throw e;
  }
  const auth = wharf.auth;
  if (auth.services) await ensureAdmin(auth.services.store, auth.audit, config.data, log, process.env, config.auth.passwordCost);
  const served = serveAuth(auth, config, log);
  logAudit(wharf.audit, log);
  registryAudit.attach(auth.audit, served.actorOf, log);
  const access = served.access;
  serveHub(server, {
    wharf,
    log,
    access,
    apiRoutes: [...hubRoutes(wharf, access), ...served.routes],
    tokenEndpoint: served.tokenEndpoint,
    onResponse: registryAudit.observe,
    audit: { log: auth.audit, actorOf: served.actorOf },
    accessLog: { pulls: config.log.pulls },
  });

  const sweep = async () => {
    const removed = await wharf.blobs.expireUploads(Date.now() - config.uploads.ttl);
    if (removed > 0) log.info({ removed }, 'expired upload sessions removed');
  };
  await sweep();
  const sweeper = setInterval(() => sweep().catch((err) => log.error({ err }, 'upload sweep failed')), config.uploads.sweepInterval);
  sweeper.unref();

  const interrupted = await wharf.deploy.interruptRunning();
  if (interrupted > 0) log.warn({ interrupted }, 'deployments cut off by the last stop are recorded as interrupted');
  wharf.webhooks.startDispatcher(log);
  const gcSchedule = new GcSchedule(wharf.gc, config.gc.interval, log);
  await gcSchedule.start();
  const scrub = new ScrubSchedule(
    wharf.blobs,
    wharf.registry.integrity,
    { interval: config.integrity.scrubInterval, rate: config.integrity.scrubRate, firstDelay: FIRST_SCRUB_DELAY },
    log,
  );
  scrub.start();
  const reconciler = new Reconciler(wharf.deploy, wharf.releases, (e) => wharf.webhooks.notify(e), log, { interval: config.deploy.reconcileInterval, engines });
  reconciler.start();
  log.info({ url: running.url, data: config.data }, 'listening');
  log.info(welcome(running.url, config.data, config.auth.enabled));

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  // The drain starts first: no new connection from here on, and requests in flight finish (up to the deadline)
  // while the schedules stop; the database closes only after the last answer.
  const drained = running.close(config.shutdown.drainTimeout);
  clearInterval(sweeper);
  await gcSchedule.stop();
  await scrub.stop();
  await reconciler.stop();
  await drained;
  await wharf.close();
  log.info('stopped');
  return 0;
}

/** The start-up lines for a person: where it listens, the UI, the admin password, the first command to run. */
function welcome(url: string, data: string, authOn: boolean): string {
  // A hub on every interface (a container's 0.0.0.0) is reached from this machine on loopback.
  const local = url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//127.0.0.1:');
  const passwordFile = join(data, INITIAL_PASSWORD_FILE);
  const lines = [`Wharf is running: registry ${new URL(local).host}, API ${local}/api/v1, web UI ${local}/`, `data in ${data}`];
  if (authOn && existsSync(passwordFile)) {
    lines.push(`admin password in ${passwordFile}`);
    lines.push(`next: wharf login ${local} -u admin --password-stdin < ${passwordFile}`);
  } else if (authOn) lines.push(`next: wharf login ${local} -u admin`);
  else lines.push(`next: docker push ${new URL(local).host}/myapp:1.0.0`);
  return lines.join('\n  ');
}
