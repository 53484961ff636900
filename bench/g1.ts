/**
 * G1 (issue 11): small queries on the real server against a raw `node:http` server answering the
 * same bytes, with stock Yoga and Mercurius + graphql-jit over the same schema beside them, in
 * the same run. Four queries: `viewer`; one app by key; a user's `tasks(first: 20)`; a
 * `catalog(first: 20)` page (bench/g1-protocol.ts).
 *
 * Processes: the four servers (bench/g1-servers.ts; the raw one bench/g1-raw-server.ts) each in
 * its own process, all pinned to core 0; this process runs autocannon, pinned to core 1 (taskset,
 * when available), and samples every process's CPU around each run. The subject starts
 * first; its answer to each query is captured (and checked: status 200, no `errors`, the data the
 * query must find), the raw server is given those exact bytes and content type, and every server
 * is checked before the load: raw byte-identical, the peers with the same `data`.
 *
 * Per query: a warm-up run on every server (Mercurius compiles with graphql-jit there), then
 * `reps` rounds of one measured run per server, the order rotated each round. A run: 50
 * keep-alive connections, closed loop, POST application/json, for `durationS`. Every response
 * must be 2xx with the very body that server gave when checked (a GraphQL `errors` answer or any
 * other change is a mismatch); non-2xx, mismatches, connection errors and timeouts (no answer in
 * 10 s) count as errors, except a peer's timeouts, which are reported beside its figures: a slow
 * peer does not make the subject's comparison wrong. Rates are medians over the rounds; latency
 * percentiles pool every measured response.
 *
 * Pass (per query): subject ≥ 0.5 × raw req/s, subject p99 ≤ 3 × raw p99, subject ahead of stock
 * Yoga, no errors. The stretch (ahead of Mercurius + jit) is reported, not required.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrateDatabase } from '../src/db/migrate.js';
import { G1_QUERIES, type G1Query, type G1Request, type G1Role, type SubjectReady } from './g1-protocol.js';
import { Child, canPin, machineCpu } from './lib/fanout-parent.js';
import type { CpuSample } from './lib/fanout-protocol.js';
import { type CapturedResponse, type LoadRun, pinThisProcess, postOnce, runLoad } from './lib/http-load.js';
import { type BenchResult, meetsTarget } from './lib/report.js';
import { median, percentile, round } from './lib/stats.js';

export interface G1Options {
  /** Keep-alive connections of every run. */
  connections: number;
  /** Seconds of the unmeasured run per server and query. */
  warmupS: number;
  /** Seconds of each measured run. */
  durationS: number;
  /** Measured runs per server and query, interleaved across the servers. */
  reps: number;
  log?: (line: string) => void;
}

export const G1_TARGET = { ratio: 0.5, p99Factor: 3 } as const;

const ENTRY = new URL('./g1-servers.ts', import.meta.url).href;
const RAW_ENTRY = new URL('./g1-raw-server.ts', import.meta.url).href;
const SERVER_CORE = 0;
const LOAD_CORE = 1;
const ROLES: G1Role[] = ['raw', 'subject', 'yoga', 'mercurius'];
const ROLE_LABEL: Record<G1Role, string> = {
  raw: 'raw node:http (same bytes)',
  subject: 'subject (buildApp)',
  yoga: 'stock Yoga',
  mercurius: 'Mercurius + graphql-jit',
};

type Servers = Record<G1Role, Child<G1Request>>;

/** One server's measured runs of one query. */
interface ServerRuns {
  runs: LoadRun[];
  /** Server process CPU per answered request, per run (µs). */
  cpuMicrosPerRequest: number[];
  /** Server process CPU ÷ wall time of the run and its CPU samples (1 = one full core). */
  cpuUtilisation: number[];
  /** The other three bench servers' CPU meanwhile, in cores. */
  idleServersCores: number[];
  /** Machine busy time not used by this benchmark's processes, in cores (of 2): other work on the machine. */
  foreignCores: number[];
}

interface ServerFigures {
  perSecond: number;
  perRep: number[];
  p50Ms: number;
  p99Ms: number;
  cpuMsPerRequest: number;
  cpuUtilisation: number;
  idleServersCores: number;
  foreignCores: number;
  /** Load generator CPU ÷ wall time during this server's runs (1 = its core saturated). */
  loadUtilisation: number;
  ok: number;
  errors: number;
  /** Of the errors: requests without an answer within autocannon's 10 s timeout. */
  timeouts: number;
}

async function launchAll(databaseUrl: string): Promise<Servers> {
  const launched: Partial<Servers> = {};
  try {
    // The subject first: it seeds the database the peers read and settles its data.
    for (const role of ['subject', 'raw', 'yoga', 'mercurius'] as const) {
      launched[role] = await Child.launch<G1Request>(role === 'raw' ? RAW_ENTRY : ENTRY, {
        name: `g1 ${role}`,
        core: SERVER_CORE,
        env: { G1_ROLE: role, DATABASE_URL: databaseUrl },
      });
    }
    return launched as Servers;
  } catch (error) {
    for (const child of Object.values(launched)) child.kill();
    throw error;
  }
}

const dataOf = (response: CapturedResponse): { data?: Record<string, unknown>; errors?: unknown } => {
  try {
    return JSON.parse(response.body) as { data?: Record<string, unknown>; errors?: unknown };
  } catch {
    return {};
  }
};

/** The subject's answer to a query, refused unless it is a clean 200 with the data the query must find. */
async function captureSubject(url: string, query: G1Query): Promise<CapturedResponse> {
  const response = await postOnce(url, query.body);
  const parsed = dataOf(response);
  if (response.status !== 200 || parsed.errors !== undefined || !parsed.data) {
    throw new Error(`the subject answered ${query.key} with ${response.status}: ${response.body.slice(0, 500)}`);
  }
  query.check(parsed.data);
  return response;
}

/**
 * What every server answered before the load, and whether it is the subject's answer: the raw
 * server byte for byte (status, content type, body), the peers with the same `data` and no errors.
 */
async function checkServer(role: G1Role, url: string, subject: CapturedResponse, query: G1Query) {
  const response = await postOnce(url, query.body);
  let problem: string | null = null;
  if (role === 'raw') {
    const same =
      response.status === subject.status &&
      response.contentType === subject.contentType &&
      response.body === subject.body;
    if (!same) problem = `raw answered ${response.status} ${response.contentType} ${response.body.slice(0, 200)}`;
  } else {
    const parsed = dataOf(response);
    const sameData = JSON.stringify(parsed.data) === JSON.stringify(dataOf(subject).data);
    if (response.status !== 200 || parsed.errors !== undefined || !sameData) {
      problem = `${role} answered ${response.status}: ${response.body.slice(0, 300)}`;
    }
  }
  return { response, problem };
}

/** CPU µs each server process has used so far. */
async function serverCpu(servers: Servers): Promise<Record<G1Role, number>> {
  const samples = await Promise.all(ROLES.map((role) => servers[role].request<CpuSample>({ type: 'cpu' })));
  return Object.fromEntries(ROLES.map((role, index) => [role, samples[index]?.cpuMicros ?? Number.NaN])) as Record<
    G1Role,
    number
  >;
}

/**
 * One measured run on `role`, with where the CPU went meanwhile: that server, the other (idle)
 * bench servers (the subject's engine, jobs and collector keep running), the load generator, and
 * what is left of the machine's busy time: processes outside this benchmark.
 */
async function measure(servers: Servers, role: G1Role, body: string, expectBody: string, options: G1Options) {
  // The window of the machine figures spans the CPU samples too, so every share has the same span.
  const windowStart = performance.now();
  const parentBefore = process.cpuUsage();
  const machineBefore = machineCpu();
  const before = await serverCpu(servers);
  const run = await runLoad({
    url: urlOf(servers[role]),
    body,
    expectBody,
    connections: options.connections,
    durationS: options.durationS,
  });
  const after = await serverCpu(servers);
  const machineAfter = machineCpu();
  const parentUsed = process.cpuUsage(parentBefore);
  const windowMs = performance.now() - windowStart;
  const used = (r: G1Role) => after[r] - before[r];
  const ownMicros = used(role);
  const idleServersMicros = ROLES.filter((r) => r !== role).reduce((sum, r) => sum + used(r), 0);
  const benchMicros = ownMicros + idleServersMicros + parentUsed.user + parentUsed.system;
  const busyMs = machineBefore && machineAfter ? machineAfter.busyMs - machineBefore.busyMs : Number.NaN;
  return {
    run,
    cpuMicrosPerRequest: ownMicros / Math.max(1, run.ok),
    cpuUtilisation: ownMicros / 1000 / windowMs,
    idleServersCores: idleServersMicros / 1000 / windowMs,
    foreignCores: Math.max(0, busyMs - benchMicros / 1000) / windowMs,
  };
}

function figuresOf(runs: ServerRuns): ServerFigures {
  const latencies = runs.runs.flatMap((run) => run.latenciesMs);
  const wallMs = runs.runs.reduce((sum, run) => sum + run.durationS * 1000, 0);
  return {
    perSecond: median(runs.runs.map((run) => run.perSecond)),
    perRep: runs.runs.map((run) => round(run.perSecond, 0)),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPerRequest: median(runs.cpuMicrosPerRequest) / 1000,
    cpuUtilisation: median(runs.cpuUtilisation),
    idleServersCores: median(runs.idleServersCores),
    foreignCores: median(runs.foreignCores),
    loadUtilisation: runs.runs.reduce((sum, run) => sum + run.loadCpuMicros, 0) / 1000 / wallMs,
    ok: runs.runs.reduce((sum, run) => sum + run.ok, 0),
    errors: runs.runs.reduce((sum, run) => sum + run.errors, 0),
    timeouts: runs.runs.reduce((sum, run) => sum + run.timeouts, 0),
  };
}

interface QueryOutcome {
  query: G1Query;
  figures: Record<G1Role, ServerFigures>;
  runs: Record<G1Role, ServerRuns>;
  warmupErrors: number;
  checkProblems: string[];
  mismatchSamples: string[];
  responseBytes: number;
  /** The subject's answer (status, content type, body) that the raw server served. */
  answer: CapturedResponse;
}

async function runQuery(
  servers: Servers,
  query: G1Query,
  subjectAnswer: CapturedResponse,
  options: G1Options,
): Promise<QueryOutcome> {
  const log = options.log ?? (() => {});
  const expected = {} as Record<G1Role, string>;
  const checkProblems: string[] = [];
  for (const role of ROLES) {
    const { response, problem } = await checkServer(role, urlOf(servers[role]), subjectAnswer, query);
    expected[role] = response.body;
    if (problem) checkProblems.push(problem);
  }
  let warmupErrors = 0;
  for (const role of ROLES) {
    const warm = await runLoad({
      url: urlOf(servers[role]),
      body: query.body,
      expectBody: expected[role],
      connections: options.connections,
      durationS: options.warmupS,
    });
    warmupErrors += countedErrors(role, warm);
  }
  const runs = Object.fromEntries(
    ROLES.map((role) => [
      role,
      { runs: [], cpuMicrosPerRequest: [], cpuUtilisation: [], idleServersCores: [], foreignCores: [] },
    ]),
  ) as unknown as Record<G1Role, ServerRuns>;
  const mismatchSamples: string[] = [];
  for (let rep = 0; rep < options.reps; rep++) {
    // Rotated order: no server always runs right after the same other one.
    const order = ROLES.map((_, index) => ROLES[(index + rep) % ROLES.length] as G1Role);
    const line: string[] = [];
    for (const role of order) {
      const measured = await measure(servers, role, query.body, expected[role], options);
      runs[role].runs.push(measured.run);
      runs[role].cpuMicrosPerRequest.push(measured.cpuMicrosPerRequest);
      runs[role].cpuUtilisation.push(measured.cpuUtilisation);
      runs[role].idleServersCores.push(measured.idleServersCores);
      runs[role].foreignCores.push(measured.foreignCores);
      if (measured.run.mismatchSample) mismatchSamples.push(`${role}: ${measured.run.mismatchSample}`);
      line.push(`${role} ${measured.run.perSecond.toFixed(0)}/s p99 ${measured.run.p99Ms.toFixed(1)} ms`);
    }
    log(`  ${query.key} rep ${rep + 1}/${options.reps}: ${line.join(', ')}`);
  }
  const figures = Object.fromEntries(ROLES.map((role) => [role, figuresOf(runs[role])])) as Record<
    G1Role,
    ServerFigures
  >;
  // Latency samples are large; the report keeps the percentiles only.
  for (const role of ROLES) for (const run of runs[role].runs) run.latenciesMs = [];
  return {
    query,
    figures,
    runs,
    warmupErrors,
    checkProblems,
    mismatchSamples,
    responseBytes: Buffer.byteLength(subjectAnswer.body),
    answer: subjectAnswer,
  };
}

/** Errors that count against the result: all of the subject's and the raw server's; a peer's except its timeouts. */
function countedErrors(role: G1Role, run: { errors: number; timeouts: number }): number {
  return role === 'subject' || role === 'raw' ? run.errors : run.errors - run.timeouts;
}

/** Other work took more than a fifth of a core during some server's runs. */
const busyMachine = (figures: Record<G1Role, ServerFigures>) => ROLES.some((role) => figures[role].foreignCores > 0.2);

const urlOf = (server: Child<G1Request>) => server.ready.url as string;

const fmtRate = (value: number) => `${value.toLocaleString('en-US', { maximumFractionDigits: 0 })} req/s`;
const fmtMs = (value: number) => `${value.toFixed(2)} ms`;

function resultOf(outcome: QueryOutcome, options: G1Options, pinned: boolean, subjectReady: SubjectReady): BenchResult {
  const { query, figures } = outcome;
  const { subject, raw, yoga, mercurius } = figures;
  const ratio = subject.perSecond / raw.perSecond;
  const target = { op: '>=' as const, value: G1_TARGET.ratio };
  const p99Ok = subject.p99Ms <= G1_TARGET.p99Factor * raw.p99Ms;
  const aheadOfYoga = subject.perSecond > yoga.perSecond;
  const errors =
    ROLES.reduce((sum, role) => sum + countedErrors(role, figures[role]), 0) +
    outcome.warmupErrors +
    outcome.checkProblems.length;
  const peerTimeouts = (['yoga', 'mercurius'] as const).filter((role) => figures[role].timeouts > 0);
  const serverLine = (f: ServerFigures) =>
    `${fmtRate(f.perSecond)} (reps ${f.perRep.join(', ')}), p50 ${fmtMs(f.p50Ms)}, p99 ${fmtMs(f.p99Ms)}, server CPU ${f.cpuMsPerRequest.toFixed(3)} ms/req at ${(f.cpuUtilisation * 100).toFixed(0)}% of a core; load generator at ${(f.loadUtilisation * 100).toFixed(0)}% of its core; idle bench servers ${f.idleServersCores.toFixed(2)} cores, processes outside the benchmark ${f.foreignCores.toFixed(2)} cores; ${f.ok} ok, ${f.errors} errors (${f.timeouts} timeouts)`;
  return {
    name: `g1-${query.key}`,
    title: `G1 ${query.title}: subject req/s ÷ raw node:http serving the same bytes`,
    description:
      'G1 (issue 11): small queries ≥ 0.5× raw `node:http` serving identical bytes, p99 ≤ 3× raw at 50 connections, and ahead of stock Yoga; stretch: ahead of Mercurius + graphql-jit on the same query.',
    subject: { label: 'subject (buildApp) answered requests, median of reps', value: subject.perSecond, unit: 'req/s' },
    baseline: { label: 'raw node:http, the same bytes, median of reps', value: raw.perSecond, unit: 'req/s' },
    ratio,
    target,
    pass: errors === 0 && meetsTarget(ratio, target) && p99Ok && aheadOfYoga,
    errors,
    metrics: {
      subject: serverLine(subject),
      'raw node:http': serverLine(raw),
      'stock Yoga': serverLine(yoga),
      'Mercurius + graphql-jit': serverLine(mercurius),
      'subject p99 ÷ raw p99 (target ≤ 3)': `${(subject.p99Ms / raw.p99Ms).toFixed(2)} (${p99Ok ? 'met' : 'MISSED'})`,
      'subject ÷ stock Yoga req/s (target > 1)': `${(subject.perSecond / yoga.perSecond).toFixed(3)} (${aheadOfYoga ? 'met' : 'MISSED'})`,
      'subject ÷ Mercurius + jit req/s (stretch > 1)': (subject.perSecond / mercurius.perSecond).toFixed(3),
      'stock Yoga ÷ raw, Mercurius + jit ÷ raw': `${(yoga.perSecond / raw.perSecond).toFixed(3)}, ${(mercurius.perSecond / raw.perSecond).toFixed(3)}`,
      'subject server CPU per request': `${subject.cpuMsPerRequest.toFixed(3)} ms`,
      'response body': `${outcome.responseBytes} bytes`,
      settings: `${options.connections} keep-alive connections, warm-up ${options.warmupS} s, ${options.reps} interleaved reps × ${options.durationS} s per server; ${pinned ? `servers pinned to core ${SERVER_CORE}, autocannon to core ${LOAD_CORE}` : 'NOT pinned (no taskset or < 2 cores)'}`,
    },
    notes: [
      `Pass requires all of: subject ≥ ${G1_TARGET.ratio} × raw req/s (the ratio), subject p99 ≤ ${G1_TARGET.p99Factor} × raw p99, subject req/s above stock Yoga's, and no errors. Ahead of Mercurius + graphql-jit is the stretch, reported only.`,
      `Subject: buildApp over a fresh migrated SQLite file, DEMO_DATA=1, LOG_LEVEL=silent, SIMULATED_STEP_MS=0, MUTATION_RATE_PER_S=0, local development mode (every request is the local admin), task engine, jobs and collector running as in production. Before the load the engine had finished the demo tasks (${Math.round(subjectReady.settleMs)} ms) and ${subjectReady.tasksAdded} finished tasks were added for the tasks query's user (${subjectReady.tasksOfUser} in all); the catalogue holds ${subjectReady.catalogApps} apps.`,
      'Baseline: a bare node:http server in its own process that reads each POST body and answers it with the status, content type and body the subject answered for it (checked byte for byte before the load).',
      "Peers, each in its own process on the same core: stock `createYoga({ schema, context })` on node:http, and Fastify + Mercurius with `jit: 1`; both over the same Pothos schema and the services of create-services.ts on the same SQLite file, with the context the subject builds (viewer from the headers, resolver services, fresh loaders, request id, child logger). Their `data` was checked equal to the subject's before the load.",
      'Load: autocannon in the benchmark process, closed loop, keep-alive, POST application/json with `accept: application/graphql-response+json, application/json`. Every response must be 2xx with the exact body that server gave when checked; non-2xx, other bodies (GraphQL errors included), connection errors and timeouts (10 s) count as errors, timeouts of a peer excepted (reported). Rates are medians over the reps; latencies are measured per response at sub-millisecond resolution and pooled over the reps.',
      "A load generator near 100% of its core (figures above) means the client, not that server, set the rate: then the server's true rate is higher than shown (this caps the raw baseline first).",
      "Each server line gives the share of a core that server used: well below 100% while the load generator is not saturated means it did not get its core. The CPU of processes outside the benchmark (machine busy time from /proc/stat minus the four servers and the load generator) shows whether other work on the machine took it; the idle bench servers (mostly the subject's engine, jobs and collector) share core 0 with whichever server is measured.",
      ...(busyMachine(figures)
        ? [
            `MACHINE BUSY: processes outside the benchmark used up to ${Math.max(...ROLES.map((role) => figures[role].foreignCores)).toFixed(2)} of the 2 cores during these runs; the rates and latencies are lower and noisier than on a quiet machine and the ratios less reliable.`,
          ]
        : []),
      ...(outcome.checkProblems.length ? [`CHECK FAILED before the load: ${outcome.checkProblems.join(' | ')}`] : []),
      ...(errors && outcome.mismatchSamples.length
        ? [`Unexpected bodies (samples): ${outcome.mismatchSamples.slice(0, 4).join(' | ')}`]
        : []),
      ...(outcome.warmupErrors ? [`${outcome.warmupErrors} errors in the warm-up runs (counted).`] : []),
      ...(peerTimeouts.length
        ? [
            `Peer timeouts (no answer within 10 s), reported but not counted as errors of this result: ${peerTimeouts.map((role) => `${ROLE_LABEL[role]} ${figures[role].timeouts}`).join(', ')}.`,
          ]
        : []),
    ],
    details: {
      settings: { ...options, log: undefined, pinned, serverCore: SERVER_CORE, loadCore: LOAD_CORE },
      query: { key: query.key, body: query.body },
      answer: { ...outcome.answer, body: outcome.answer.body.slice(0, 2000) },
      subjectReady,
      figures,
      runs: outcome.runs,
      checkProblems: outcome.checkProblems,
      mismatchSamples: outcome.mismatchSamples,
      warmupErrors: outcome.warmupErrors,
      labels: ROLE_LABEL,
    },
  };
}

export async function g1(options: G1Options): Promise<BenchResult[]> {
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(path.join(tmpdir(), 'market-bench-g1-'));
  const databaseUrl = `file:${path.join(dir, 'g1.db')}`;
  const unpin = canPin() ? pinThisProcess(LOAD_CORE) : null;
  const pinned = unpin !== null;
  let servers: Servers | undefined;
  try {
    await migrateDatabase(databaseUrl);
    servers = await launchAll(databaseUrl);
    const subjectReady = servers.subject.ready.detail as SubjectReady;
    log(
      `  servers ready (${pinned ? `pinned to core ${SERVER_CORE}, autocannon on core ${LOAD_CORE}` : 'not pinned'}); demo tasks settled in ${Math.round(subjectReady.settleMs)} ms, ${subjectReady.tasksAdded} tasks added`,
    );
    const answers = new Map<G1Query, CapturedResponse>();
    for (const query of G1_QUERIES) answers.set(query, await captureSubject(urlOf(servers.subject), query));
    await servers.raw.request({
      type: 'answers',
      answers: G1_QUERIES.map((query) => {
        const { status, contentType, body } = answers.get(query) as CapturedResponse;
        return { requestBody: query.body, status, contentType, body };
      }),
    });
    const results: BenchResult[] = [];
    for (const query of G1_QUERIES) {
      const outcome = await runQuery(servers, query, answers.get(query) as CapturedResponse, options);
      results.push(resultOf(outcome, options, pinned, subjectReady));
    }
    return results;
  } finally {
    if (servers) await Promise.all(Object.values(servers).map((server) => server.stop()));
    unpin?.();
    rmSync(dir, { recursive: true, force: true });
  }
}
