/**
 * HTTP load for the read-path benchmarks: one autocannon run (closed loop, N keep-alive
 * connections, one request body) with every response checked against the expected bytes and its
 * latency kept at full resolution; one plain request to capture what a server answers; and
 * pinning this very process to a core with `taskset`.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import { percentile } from './stats.js';

/** The part of autocannon's programmatic API used here (the package ships no types). */
interface AutocannonOptions {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
  connections: number;
  duration: number;
  pipelining: 1;
  /** A response whose body differs counts as a mismatch. */
  expectBody?: string;
  timeout: number;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  resets: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}

interface AutocannonTracker {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, ms: number) => void): void;
  on(event: 'reqMismatch', listener: (body: string) => void): void;
}

type Autocannon = (
  options: AutocannonOptions,
  done: (error: Error | null, result: AutocannonResult) => void,
) => AutocannonTracker;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** What every request of the benchmarks sends: a JSON POST, as a GraphQL client does. */
export const JSON_POST_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/graphql-response+json, application/json;q=0.9',
} as const;

export interface LoadOptions {
  url: string;
  body: string;
  connections: number;
  durationS: number;
  /** The exact response body every request must get; any other body is a mismatch (an error). */
  expectBody: string;
}

export interface LoadRun {
  /** 2xx responses whose body was the expected one, per second of the run. */
  perSecond: number;
  ok: number;
  durationS: number;
  /** Connection errors and timeouts, non-2xx responses, 2xx responses with another body than the expected one. */
  errors: number;
  non2xx: number;
  /** 2xx responses with another body than the expected one (a GraphQL `errors` answer, changed data). */
  mismatches: number;
  timeouts: number;
  /** The first differing body, for the report. */
  mismatchSample?: string;
  /** Every response's latency (ms, sub-millisecond: autocannon's own histogram keeps whole ms). */
  latenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  /** CPU (user + system) this process used during the run, µs: the load generator's own cost. */
  loadCpuMicros: number;
}

const cpuMicros = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

/** One autocannon run against `url`; resolves when it has stopped. */
export function runLoad(options: LoadOptions): Promise<LoadRun> {
  const latencies: number[] = [];
  let mismatchSample: string | undefined;
  // autocannon reports a mismatch right after the response event of the same request (same
  // callback), so the status just seen is the mismatching response's: only 2xx ones are counted
  // here, non-2xx responses being errors already.
  let lastStatus = 0;
  let mismatches2xx = 0;
  const cpuBefore = cpuMicros();
  return new Promise((resolve, reject) => {
    const tracker = autocannon(
      {
        url: options.url,
        method: 'POST',
        headers: { ...JSON_POST_HEADERS },
        body: options.body,
        connections: options.connections,
        duration: options.durationS,
        pipelining: 1,
        expectBody: options.expectBody,
        timeout: 10,
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const loadCpuMicros = cpuMicros() - cpuBefore;
        const ok = result['2xx'] - mismatches2xx;
        resolve({
          perSecond: ok / result.duration,
          ok,
          durationS: result.duration,
          errors: result.errors + result.non2xx + mismatches2xx,
          non2xx: result.non2xx,
          mismatches: mismatches2xx,
          timeouts: result.timeouts,
          ...(mismatchSample === undefined ? {} : { mismatchSample }),
          latenciesMs: latencies,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
          loadCpuMicros,
        });
      },
    );
    tracker.on('response', (_client, status, _bytes, ms) => {
      lastStatus = status;
      latencies.push(ms);
    });
    tracker.on('reqMismatch', (body) => {
      if (lastStatus < 200 || lastStatus > 299) return;
      mismatches2xx++;
      mismatchSample ??= body.slice(0, 300);
    });
  });
}

export interface CapturedResponse {
  status: number;
  contentType: string;
  body: string;
}

/** What one POST got back, timed from sending to the last byte of the body. */
export interface PostReply {
  status: number;
  contentType: string;
  text: string;
  ms: number;
}

/**
 * One JSON POST with the benchmarks' headers (JSON_POST_HEADERS, plus `headers`), as autocannon
 * sends it (no compression asked for): the one HTTP client every benchmark's single requests use.
 */
export function postJson(
  url: string | URL,
  body: string,
  { agent = false, headers = {} }: { agent?: http.Agent | false; headers?: Record<string, string> } = {},
): Promise<PostReply> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...JSON_POST_HEADERS, ...headers, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
            ms: performance.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** One POST without a shared agent, as the g1 checks capture answers. */
export async function postOnce(url: string, body: string): Promise<CapturedResponse> {
  const { status, contentType, text } = await postJson(url, body);
  return { status, contentType, body: text };
}

/**
 * Pins every thread of this process to `core` with `taskset -a`; returns how to undo it, or null
 * when taskset is missing or refused (the caller reports running unpinned).
 */
export function pinThisProcess(core: number): (() => void) | null {
  const pid = String(process.pid);
  try {
    // "pid 123's current affinity list: 0,1"
    const before = execFileSync('taskset', ['-c', '-p', pid], { encoding: 'utf8' }).trim().split(': ').pop();
    execFileSync('taskset', ['-a', '-c', '-p', String(core), pid], { stdio: 'ignore' });
    return () => {
      if (before) execFileSync('taskset', ['-a', '-c', '-p', before, pid], { stdio: 'ignore' });
    };
  } catch {
    return null;
  }
}
