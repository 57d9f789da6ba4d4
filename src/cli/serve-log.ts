// The server's log: lines for people on a terminal (pino-pretty), one JSON object a line otherwise (or with
// --log-format json), ISO times either way; and the audit rows said as log lines as they are written.
import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config.js';

export function serverLog(config: Config['log'], stdout: NodeJS.WriteStream = process.stdout): Logger {
  const options = { level: config.level, base: { service: 'wharf' }, timestamp: pino.stdTimeFunctions.isoTime };
  const pretty = config.format === 'pretty' || (config.format === 'auto' && stdout.isTTY === true);
  if (!pretty) return pino(options, pino.destination({ dest: 1, sync: false }));
  // A stream in this thread (not a transport's worker): the line is out before the process goes on or exits.
  const stream = PinoPretty({
    colorize: stdout.isTTY === true,
    translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
    ignore: 'pid,hostname,service,req',
    singleLine: true,
    sync: true,
    destination: 1,
  });
  return pino(options, stream);
}

/** One line per audit row: pushes, tag moves, releases, deploys, failed logins and access changes. */
export function logAudit(audit: AuditLog, log: Logger): void {
  audit.observe((e: AuditEntry) => {
    const what = e.repository ? `${e.repository}${e.target ? (e.target.startsWith('sha256:') ? '@' : ':') + e.target : ''}` : (e.target ?? '');
    const by = `${e.actor.name}${e.actor.address ? ` from ${e.actor.address}` : ''}`;
    const detail = e.detail as Record<string, unknown> | undefined;
    const digest = typeof detail?.digest === 'string' ? ` ${detail.digest}` : '';
    const fields = { audit: { action: e.action, repository: e.repository ?? null, target: e.target ?? null, result: e.result, actor: e.actor.name, address: e.actor.address, detail } };
    const line = `${e.action} ${what}${digest} by ${by}${e.result === 'ok' ? '' : `: ${e.result}`}`.replace(/\s+/g, ' ');
    if (e.result === 'ok' && e.action !== 'login.failure') log.info(fields, line);
    else log.warn(fields, line);
  });
}
