/**
 * The benchmark harness (`npm run bench`, or `npx tsx bench/run.ts`): runs every benchmark, writes
 * bench/results/<name>.json and bench/results/summary.md, and prints a short table.
 *
 *   --quick             short smoke version (small counts), results in bench/results/quick/
 *   --only <name>       run only the named benchmark(s), comma-separated
 *   --concurrency <n>   clients per side (default 8)
 *   --cpu-prof <dir>    write V8 CPU profiles of the subject server process into <dir>
 *                       (summarise one with: npx tsx bench/lib/profile-summary.ts <file>)
 *   --no-engine         diagnostic: stop the task engine in the subject server, to show its
 *                       share of the time; results go to bench/results/diagnostic/, never pass
 *
 * Exit code: 0 when every benchmark ran without errors (a missed target is reported, not an exit
 * failure, in the full run); 1 on any error; in --quick mode also 1 when a ratio misses the
 * target by more than the smoke tolerance, so a large regression fails loudly in CI.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { catalogueBench } from './catalogue-sync.js';
import { clusterBench } from './cluster.js';
import { fanout } from './fanout.js';
import { g1 } from './g1.js';
import { g4b } from './g4b.js';
import { installRate } from './install-rate.js';
import { type BenchResult, formatFigure, machineInfo, summaryMarkdown } from './lib/report.js';
import { metricsBench, metricsSizes } from './metrics.js';
import { outboxBench } from './outbox.js';
import { snapshotBench } from './snapshot.js';
import { soak } from './soak.js';
import { sseFanout } from './sse-fanout.js';

type Mode = 'full' | 'quick';

interface Settings {
  concurrency: number;
  cpuProfDir?: string;
  /** false only for the --no-engine diagnostic. */
  engine: boolean;
}

interface Benchmark {
  name: string;
  /** One result, or one per case (each with its own name, ratio and target, e.g. g1's queries). */
  run(mode: Mode, settings: Settings): Promise<BenchResult | BenchResult[]>;
}

/** Subscriber counts and windows of the fan-out benchmarks (graphql-ws and SSE alike). */
function fanoutSizes(mode: Mode) {
  return mode === 'quick'
    ? { sizes: [{ subscribers: 200, events: 40, intervalMs: 30 }], reps: 1, idleMs: 2000 }
    : {
        sizes: [
          { subscribers: 1000, events: 40, intervalMs: 200 },
          { subscribers: 10_000, events: 8, intervalMs: 2000 },
        ],
        reps: 3,
      };
}

/** Every benchmark of the harness; add new ones here. */
const BENCHMARKS: Benchmark[] = [
  {
    name: 'install-rate',
    run: (mode, { concurrency, cpuProfDir, engine }) =>
      installRate({
        concurrency,
        engine,
        ...(mode === 'quick' ? { warmup: 50, perRep: 150, reps: 2 } : { warmup: 300, perRep: 1000, reps: 3 }),
        ...(cpuProfDir ? { cpuProfDir } : {}),
        log: (line) => console.log(line),
      }),
  },
  {
    name: 'fanout',
    run: (mode, { cpuProfDir }) =>
      fanout({
        ...fanoutSizes(mode),
        ...(cpuProfDir ? { cpuProfDir } : {}),
        log: (line) => console.log(line),
      }),
  },
  {
    name: 'g1',
    run: (mode) =>
      g1({
        connections: 50,
        ...(mode === 'quick' ? { warmupS: 1, durationS: 3, reps: 1 } : { warmupS: 3, durationS: 10, reps: 2 }),
        log: (line) => console.log(line),
      }),
  },
  {
    name: 'sse',
    run: (mode, { cpuProfDir }) =>
      sseFanout({
        ...fanoutSizes(mode),
        // Idle CPU is the fan-out benchmark's figure; here a short settle is enough.
        idleMs: 2000,
        ...(cpuProfDir ? { cpuProfDir } : {}),
        log: (line) => console.log(line),
      }),
  },
  {
    name: 'g10',
    run: (mode) => soak({ durationMs: mode === 'quick' ? 30_000 : 600_000, log: (line) => console.log(line) }),
  },
  {
    // G2 (g2-1k, g2-10k, g2-100k, g2-rss, g2-startup) and G3 (g3-*) of issue 11.
    name: 'snapshot',
    run: (mode) =>
      snapshotBench({
        sizes: mode === 'quick' ? [1000, 10_000] : [1000, 10_000, 100_000],
        requests: (apps) =>
          mode === 'quick'
            ? apps <= 1000
              ? { warmup: 5, measured: 15 }
              : { warmup: 2, measured: 7 }
            : apps <= 1000
              ? { warmup: 20, measured: 50 }
              : apps <= 10_000
                ? { warmup: 5, measured: 20 }
                : { warmup: 2, measured: 7 },
        log: (line) => console.log(line),
      }),
  },
  {
    // G4b of issue 11 (g4b-one, g4b-1000; g4b-100 in --quick).
    name: 'g4b',
    run: (mode, { concurrency }) =>
      g4b({
        concurrency,
        ...(mode === 'quick'
          ? { apps: 10_000, dashboards: 100, warmup: 50, perRep: 150, reps: 2 }
          : { apps: 100_000, dashboards: 1000, warmup: 200, perRep: 400, reps: 3 }),
        log: (line) => console.log(line),
      }),
  },
  {
    // Issue 12: cluster-latency (other ÷ same instance p99 at 1,000 subscribers; 200 in --quick),
    // cluster-throughput (changes/s through the Redis change log ÷ single process, Redis calls per change).
    name: 'cluster',
    run: (mode, { cpuProfDir }) =>
      clusterBench({
        ...(cpuProfDir ? { cpuProfDir } : {}),
        ...(mode === 'quick'
          ? {
              subscribers: 200,
              latency: { events: 40, intervalMs: 50, reps: 1 },
              throughput: { durationMs: 3000, reps: 1, tasks: 8 },
            }
          : {
              subscribers: 1000,
              latency: { events: 100, intervalMs: 50, reps: 3 },
              throughput: { durationMs: 10_000, reps: 3, tasks: 8 },
            }),
        log: (line) => console.log(line),
      }),
  },
  {
    // Issue 13: catalogue (full sync of 2,000 apps ÷ raw inserts of the same rows; 500 in --quick),
    // catalogue-unchanged (server CPU of an unchanged-hash sync); catalogue-pg* on PostgreSQL (full run only).
    name: 'catalogue',
    run: (mode) =>
      catalogueBench({
        ...(mode === 'quick'
          ? { apps: 500, reps: 3, unchanged: 100, postgresReps: 0 }
          : { apps: 2000, reps: 5, unchanged: 200, postgresReps: 3 }),
        log: (line) => console.log(line),
      }),
  },
  {
    // Issue 14: outbox-throughput[-pg] (deliveries/s ÷ raw POSTs/s), outbox-request-path (webhooks'
    // added latency of a task completion).
    name: 'outbox',
    run: (mode) =>
      outboxBench({
        concurrency: 8,
        ...(mode === 'quick' ? { messages: 500, reps: 2, installs: 40 } : { messages: 3000, reps: 3, installs: 150 }),
        log: (line) => console.log(line),
      }),
  },
  {
    // Issue 15: metrics-scrape (GET /metrics with 10k subscriptions and 1k apps ÷ the 5 ms budget;
    // 2,000 subscriptions in --quick), metrics-g1 (G1 queries with ÷ without metrics, ≥ 0.97).
    name: 'metrics',
    run: (mode) => metricsBench(metricsSizes(mode)),
  },
];

/**
 * In --quick mode a ratio fails the run only beyond target × this factor (target ÷ it for "≤"
 * targets): short runs on 2 shared cores are noisy (install-rate's quick ratio ranged 0.28–0.37 on
 * the same code), so this catches large regressions, not a missed target.
 */
const SMOKE_TOLERANCE = 0.3;

const RESULTS_DIR = fileURLToPath(new URL('./results', import.meta.url));

function smokeBound(result: BenchResult): number {
  return result.target.op === '>=' ? result.target.value * SMOKE_TOLERANCE : result.target.value / SMOKE_TOLERANCE;
}

function withinSmokeBound(result: BenchResult): boolean {
  const bound = smokeBound(result);
  return result.target.op === '>=' ? result.ratio >= bound : result.ratio <= bound;
}

function printTable(results: BenchResult[]): void {
  const rows = [
    ['benchmark', 'subject', 'baseline', 'ratio', 'target', 'errors', 'result'],
    ...results.map((r) => [
      r.name,
      formatFigure(r.subject),
      formatFigure(r.baseline),
      r.ratio.toFixed(3),
      `${r.target.op} ${r.target.value}`,
      String(r.errors),
      r.pass ? 'pass' : 'FAIL',
    ]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  for (const [index, row] of rows.entries()) {
    console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
    if (index === 0) console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  }
  for (const r of results) {
    console.log(`\n${r.name}:`);
    for (const [label, value] of Object.entries(r.metrics)) console.log(`  ${label}: ${value}`);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      'cpu-prof': { type: 'string' },
      'no-engine': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const mode: Mode = values.quick ? 'quick' : 'full';
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a positive integer');
  const only = values.only?.split(',').map((name) => name.trim());
  const selected = only ? BENCHMARKS.filter((bench) => only.includes(bench.name)) : BENCHMARKS;
  if (selected.length === 0) throw new Error(`no benchmark named ${values.only}`);
  const cpuProfDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;

  const engine = !values['no-engine'];
  const outDir = engine
    ? mode === 'quick'
      ? path.join(RESULTS_DIR, 'quick')
      : RESULTS_DIR
    : path.join(RESULTS_DIR, 'diagnostic', mode);
  mkdirSync(outDir, { recursive: true });
  const machine = machineInfo();
  console.log(
    `bench (${mode}): ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, ${concurrency} clients per side`,
  );

  const results: BenchResult[] = [];
  for (const bench of selected) {
    console.log(`\n> ${bench.name}`);
    const started = performance.now();
    const outcome = await bench.run(mode, { concurrency, engine, ...(cpuProfDir ? { cpuProfDir } : {}) });
    console.log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    for (const result of Array.isArray(outcome) ? outcome : [outcome]) {
      results.push(result);
      writeFileSync(
        path.join(outDir, `${result.name}.json`),
        `${JSON.stringify({ ...result, mode, machine }, null, 2)}\n`,
      );
    }
  }
  writeFileSync(path.join(outDir, 'summary.md'), summaryMarkdown(results, machine, mode));

  console.log('');
  printTable(results);
  console.log(`\nwrote ${path.relative(process.cwd(), outDir) || '.'}/summary.md and one JSON report per benchmark`);

  let failed = false;
  for (const r of results) {
    if (r.errors > 0) {
      console.error(`${r.name}: ${r.errors} errors`);
      failed = true;
    }
    if (mode === 'quick' && engine && !withinSmokeBound(r)) {
      console.error(`${r.name}: ratio ${r.ratio.toFixed(3)} is beyond the smoke bound ${smokeBound(r)}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
