// Turns the runs into the tables of docs/benchmarks.md: medians per server, Wharf against Distribution, nginx as the ceiling, the targets, and what the CPU went to.
import type { Figure, Goal, Measurement } from './figures.js';
import type { ServerName } from './registries.js';

export interface Result {
  figure: string;
  server: ServerName;
  run: number;
  /** Absent when the run failed; `error` says why. */
  measurement?: Measurement;
  error?: string;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function format(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return '—';
  if (unit === 's') return `${value.toFixed(2)} s`;
  if (unit === 'ms') return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
  return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
}

function goalText(goal: Goal | undefined): string {
  if (!goal) return '';
  if ('times' in goal) return `≥ ${goal.times}× Distribution`;
  if ('faster' in goal) return 'faster than Distribution';
  return `< ${goal.belowMiB} MiB`;
}

/** Whether Wharf meets the goal; `ratio` is how many times better than Distribution Wharf is. */
function verdict(goal: Goal | undefined, wharf: number | undefined, ratio: number | undefined): string {
  if (!goal || wharf === undefined) return '';
  if ('belowMiB' in goal) return wharf < goal.belowMiB ? 'yes' : '**no**';
  if (ratio === undefined) return '';
  const needed = 'times' in goal ? goal.times : 1;
  const met = 'times' in goal ? ratio >= needed : ratio > needed;
  if (met) return 'yes';
  return ratio >= needed * 0.85 ? '**no** (within noise)' : '**no**';
}

interface Row {
  figure: Figure;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  nginx: boolean;
  goal?: Goal;
  values: Partial<Record<ServerName, number>>;
  p99: Partial<Record<ServerName, number>>;
  failed: Set<ServerName>;
}

function rows(figures: Figure[], results: Result[]): Row[] {
  const out: Row[] = [];
  for (const figure of figures) {
    const mine = results.filter((r) => r.figure === figure.id);
    if (mine.length === 0) continue;
    const failed = new Set(mine.filter((r) => r.error !== undefined).map((r) => r.server));
    const servers = [...new Set(mine.map((r) => r.server))].filter((server) => !failed.has(server));
    const of = (server: ServerName) =>
      mine.filter((r) => r.server === server).flatMap((r) => (r.measurement ? [r.measurement] : []));
    const base = { figure, nginx: figure.nginx, values: {}, p99: {}, failed };
    const main: Row = { ...base, label: figure.label, unit: figure.unit, better: figure.better, goal: figure.goal };
    for (const server of servers) {
      main.values[server] = median(of(server).map((m) => m.value));
      const p99s = of(server).flatMap((m) => (m.p99Ms === undefined ? [] : [m.p99Ms]));
      if (p99s.length) main.p99[server] = median(p99s);
    }
    out.push(main);
    if (figure.peakRss) {
      const rss: Row = { ...base, values: {}, label: figure.peakRss.label, unit: 'MiB', better: 'lower', nginx: false, goal: figure.peakRss.goal };
      for (const server of servers) {
        if (server === 'nginx') continue;
        rss.values[server] = Math.max(...of(server).map((m) => m.sample.peakRssMiB ?? NaN));
      }
      out.push(rss);
    }
  }
  return out;
}

function cell(row: Row, server: ServerName): string {
  if (row.failed.has(server)) return 'failed';
  const value = format(row.values[server], row.unit);
  const p99 = row.p99[server];
  return p99 === undefined ? value : `${value}, p99 ${format(p99, 'ms')}`;
}

/** Auth on must stay within 10% of anonymous (issue 3): at least 0.90× as good. */
export const AUTH_GOAL = 0.9;

/**
 * Wharf's clients with credentials against the same Wharf's clients without, per run: run i of one against run i of
 * the other, taken next to each other, so a neighbour's load shifts both alike; the median of those ratios (> 1: the
 * authenticated clients did better).
 */
function pairedRatios(figure: Figure, results: Result[], of: (m: Measurement) => number, better: 'higher' | 'lower'): number | undefined {
  const runs = (server: ServerName) => new Map(results.filter((r) => r.figure === figure.id && r.server === server && r.measurement).map((r) => [r.run, r.measurement!]));
  const on = runs('wharf');
  const off = runs('wharf-anon');
  const ratios = [...on].flatMap(([run, m]) => {
    const twin = off.get(run);
    if (!twin) return [];
    return [better === 'higher' ? of(m) / of(twin) : of(twin) / of(m)];
  });
  return ratios.length ? median(ratios) : undefined;
}

function authRatioCell(figure: Figure, results: Result[]): string {
  if (!figure.anonymous) return '';
  const ratio = pairedRatios(figure, results, (m) => m.value, figure.better);
  if (ratio === undefined) return '—';
  return `${ratio.toFixed(2)}×${ratio < AUTH_GOAL ? ' **no**' : ''}`;
}

export function figuresTable(figures: Figure[], results: Result[]): string {
  const lines = [
    '| figure | Wharf | Wharf anonymous | authenticated vs anonymous (≥ 0.90×) | Distribution | Wharf vs Distribution | nginx (ceiling) | target | met |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const row of rows(figures, results)) {
    const wharf = row.values.wharf;
    const distribution = row.values.distribution;
    const ratio =
      wharf !== undefined && distribution !== undefined
        ? row.better === 'higher'
          ? wharf / distribution
          : distribution / wharf
        : undefined;
    const anonymous = row.figure.anonymous ? cell(row, 'wharf-anon') : '';
    const authRatio = row.label === row.figure.label ? authRatioCell(row.figure, results) : '';
    lines.push(
      `| ${row.label} | ${cell(row, 'wharf')} | ${anonymous} | ${authRatio} | ${cell(row, 'distribution')} | ${ratio === undefined ? '—' : `${ratio.toFixed(2)}×`} | ${row.nginx ? cell(row, 'nginx') : ''} | ${goalText(row.goal)} | ${verdict(row.goal, wharf, ratio)} |`,
    );
  }
  return lines.join('\n');
}

/** Server CPU per unit of work (a request, a MiB, a whole storm) in the unit it reads best in. */
function cpuPerUnit(figure: Figure): { unit: string; of(m: Measurement): number } {
  if (figure.unit === 'req/s') return { unit: 'µs/request', of: (m) => (m.sample.serverCpu / (m.value * m.sample.wallSeconds)) * 1e6 };
  if (figure.unit === 'MiB/s') return { unit: 'ms/MiB', of: (m) => (m.sample.serverCpu / (m.value * m.sample.wallSeconds)) * 1e3 };
  return { unit: 'CPU s', of: (m) => m.sample.serverCpu };
}

/**
 * What authentication costs: each figure measured on Wharf with clients sending Bearer tokens or Basic credentials and
 * with clients sending none (anonymous pull), as paired ratios; server CPU per unit of work as well, which other load
 * on the machine disturbs less than throughput.
 */
export function authTable(figures: Figure[], results: Result[]): string {
  const compared = figures.filter((f) => f.anonymous && results.some((r) => r.figure === f.id && r.server === 'wharf-anon'));
  if (compared.length === 0) return '';
  const lines = [
    `Authentication: Wharf's clients logged in (a member user with a grant; Bearer tokens from /token, or HTTP Basic) against the same Wharf's anonymous clients (anonymous pull of bench/*), each authenticated run paired with the anonymous run next to it; medians of the paired ratios (≥ ${AUTH_GOAL.toFixed(2)}× is within 10%).`,
    '',
    '| figure | clients send | authenticated vs anonymous | server CPU, authenticated / anonymous | CPU ratio (anonymous / authenticated) |',
    '| --- | --- | ---: | ---: | ---: |',
  ];
  for (const figure of compared) {
    const cpu = cpuPerUnit(figure);
    const cpuOf = (server: ServerName) => {
      const values = results.flatMap((r) => (r.figure === figure.id && r.server === server && r.measurement ? [cpu.of(r.measurement)] : []));
      return values.length ? median(values) : NaN;
    };
    const cpuRatio = pairedRatios(figure, results, cpu.of, 'lower');
    const digits = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
    lines.push(
      `| ${figure.label} | ${figure.scheme === 'basic' ? 'Basic' : 'Bearer'} | ${authRatioCell(figure, results)} | ${digits(cpuOf('wharf'))} / ${digits(cpuOf('wharf-anon'))} ${cpu.unit} | ${cpuRatio === undefined ? '—' : `${cpuRatio.toFixed(2)}×`} |`,
    );
  }
  return lines.join('\n');
}

/**
 * CPU of the load generator, of the server and of everything else on the machine, in cores (CPU seconds per
 * wall-clock second), medians over the runs.
 */
export function cpuTable(figures: Figure[], results: Result[]): string {
  const servers: ServerName[] = ['wharf', 'wharf-anon', 'wharf-pg', 'wharf-pg2', 'distribution', 'nginx'];
  const lines = [
    '| figure | Wharf: client / server / other | Wharf anonymous | Wharf on PostgreSQL | two Wharf on PostgreSQL behind nginx | Distribution | nginx |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const figure of figures) {
    const mine = results.filter((r) => r.figure === figure.id);
    if (mine.length === 0) continue;
    const cells = servers.map((server) => {
      const samples = mine.filter((r) => r.server === server).flatMap((r) => (r.measurement ? [r.measurement.sample] : []));
      if (samples.length === 0) return '';
      const cores = (cpu: (s: (typeof samples)[number]) => number) =>
        median(samples.map((s) => cpu(s) / s.wallSeconds)).toFixed(2);
      return `${cores((s) => s.clientCpu)} / ${cores((s) => s.serverCpu)} / ${cores((s) => s.otherCpu)}`;
    });
    lines.push(`| ${figure.label} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** PostgreSQL must keep the registry's hot reads at 70% of SQLite's or better (issue 16); pushes and pulls within noise. */
export const POSTGRES_GOAL = 0.7;
const POSTGRES_HOT_READS = /^(manifest-get|manifest-head|tags-list)/;

/**
 * The same Wharf with its metadata on PostgreSQL against SQLite (medians, `better` way round: > 1 is PostgreSQL
 * better), with server CPU per unit of work, which a neighbour's load disturbs less than throughput.
 */
export function postgresTable(figures: Figure[], results: Result[]): string {
  const compared = figures.filter((f) => results.some((r) => r.figure === f.id && r.server === 'wharf-pg' && r.measurement));
  if (compared.length === 0) return '';
  const lines = [
    `Metadata on PostgreSQL (one local cluster, scripts/postgres.sh) against the embedded SQLite, same Wharf, same clients; medians, and medians of the paired ratios (run i on PostgreSQL against run i on SQLite, taken moments apart, which a loaded machine disturbs less). Hot reads (manifest GET/HEAD, tags/list) must stay at ≥ ${POSTGRES_GOAL.toFixed(2)}× of SQLite's, pushes and pulls within noise; server CPU per unit of work is what a neighbour's load disturbs least.`,
    '',
    '| figure | SQLite | PostgreSQL | PostgreSQL vs SQLite (medians) | paired | server CPU, SQLite / PostgreSQL | CPU, paired (SQLite / PostgreSQL) | target | met |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const figure of compared) {
    const of = (server: ServerName, pick: (m: Measurement) => number) => {
      const values = results.flatMap((r) => (r.figure === figure.id && r.server === server && r.measurement ? [pick(r.measurement)] : []));
      return values.length ? median(values) : undefined;
    };
    const cpu = cpuPerUnit(figure);
    const paired = (pick: (m: Measurement) => number, better: 'higher' | 'lower') => {
      const runs = (server: ServerName) => new Map(results.filter((r) => r.figure === figure.id && r.server === server && r.measurement).map((r) => [r.run, r.measurement!]));
      const sqliteRuns = runs('wharf');
      const ratios = [...runs('wharf-pg')].flatMap(([run, m]) => {
        const twin = sqliteRuns.get(run);
        return twin ? [better === 'higher' ? pick(m) / pick(twin) : pick(twin) / pick(m)] : [];
      });
      return ratios.length ? median(ratios) : undefined;
    };
    const sqlite = of('wharf', (m) => m.value);
    const postgres = of('wharf-pg', (m) => m.value);
    const ratio = sqlite !== undefined && postgres !== undefined ? (figure.better === 'higher' ? postgres / sqlite : sqlite / postgres) : undefined;
    const pairedRatio = paired((m) => m.value, figure.better);
    const cpuRatio = paired(cpu.of, 'lower');
    const digits = (v: number | undefined) => (v === undefined ? '—' : v < 10 ? v.toFixed(2) : v.toFixed(1));
    const times = (v: number | undefined) => (v === undefined ? '—' : `${v.toFixed(2)}×`);
    const hot = POSTGRES_HOT_READS.test(figure.id);
    const target = hot ? `≥ ${POSTGRES_GOAL.toFixed(2)}×` : 'within noise (≥ 0.85×)';
    const judged = pairedRatio ?? ratio;
    const met = judged === undefined ? '—' : judged >= (hot ? POSTGRES_GOAL : 0.85) ? 'yes' : '**no**';
    lines.push(
      `| ${figure.label} | ${format(sqlite, figure.unit)} | ${format(postgres, figure.unit)} | ${times(ratio)} | ${times(pairedRatio)} | ${digits(of('wharf', cpu.of))} / ${digits(of('wharf-pg', cpu.of))} ${cpu.unit} | ${times(cpuRatio)} | ${target} | ${met} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Two instances over one PostgreSQL database behind nginx against one instance on the same database, and against
 * Distribution; server CPU per unit of work counts both instances and nginx (what N machines would each carry is
 * the one-instance CPU per request: the database round trips stay per request, see docs/benchmarks.md).
 */
export function clusterTable(figures: Figure[], results: Result[]): string {
  const compared = figures.filter((f) => results.some((r) => r.figure === f.id && r.server === 'wharf-pg2' && r.measurement));
  if (compared.length === 0) return '';
  const lines = [
    'Two Wharf instances over one PostgreSQL database and one data directory, nginx round-robin in front (the cluster of docs/configuration.md), against one instance on PostgreSQL and against Distribution; on this 2-core machine the two instances, nginx and the load generator share the same cores. Medians.',
    '',
    '| figure | one instance | two behind nginx | two vs one | two vs Distribution | server CPU, one / two + nginx |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const figure of compared) {
    const of = (server: ServerName, pick: (m: Measurement) => number) => {
      const values = results.flatMap((r) => (r.figure === figure.id && r.server === server && r.measurement ? [pick(r.measurement)] : []));
      return values.length ? median(values) : undefined;
    };
    const ratio = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : figure.better === 'higher' ? a / b : b / a);
    const one = of('wharf-pg', (m) => m.value);
    const two = of('wharf-pg2', (m) => m.value);
    const dist = of('distribution', (m) => m.value);
    const cpu = cpuPerUnit(figure);
    const digits = (v: number | undefined) => (v === undefined ? '—' : v < 10 ? v.toFixed(2) : v.toFixed(1));
    const times = (v?: number) => (v === undefined ? '—' : `${v.toFixed(2)}×`);
    lines.push(
      `| ${figure.label} | ${format(one, figure.unit)} | ${format(two, figure.unit)} | ${times(ratio(two, one))} | ${times(ratio(two, dist))} | ${digits(of('wharf-pg', cpu.of))} / ${digits(of('wharf-pg2', cpu.of))} ${cpu.unit} |`,
    );
  }
  return lines.join('\n');
}
