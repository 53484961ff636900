/**
 * SSE fan-out against WebSocket fan-out (ARCHITECTURE.md §8, G7): the real server's CPU per
 * delivered event with N SSE subscribers (graphql-sse distinct connections, POST /graphql/stream)
 * ÷ with N graphql-ws subscribers, same subscription, same changes, same harness as fanout.ts
 * (`pair: 'ws-sse'`): two server processes of the real server on core 0, one with each kind of
 * client, their load clients on core 1, windows interleaved.
 */
import { type FanoutOptions, measureSizes, type SizeResult } from './fanout.js';
import { FANOUT_QUERY } from './lib/fanout-protocol.js';
import { type BenchResult, meetsTarget } from './lib/report.js';

/** G7: SSE CPU per delivery ÷ WebSocket. */
export const SSE_TARGET = 1.2;

const µs = (value: number) => `${value.toFixed(2)} µs`;
const ms = (value: number) => `${value.toFixed(1)} ms`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

export async function sseFanout(options: Omit<FanoutOptions, 'pair'>): Promise<BenchResult> {
  const { sizes, thrown } = await measureSizes({ ...options, pair: 'ws-sse' });
  const measured = sizes.filter(
    (size): size is Required<Pick<SizeResult, 'sides' | 'ratios'>> & SizeResult => !!size.sides && !!size.ratios,
  );
  if (measured.length === 0) throw thrown ?? new Error('no SSE fan-out size could be measured');
  const skipped = sizes.filter((size) => size.skipped);
  const errors =
    measured.reduce((sum, size) => sum + size.sides.subject.errors + size.sides.baseline.errors, 0) +
    skipped.filter((size) => size.skipped?.startsWith('failed')).length;
  const worst = measured.reduce((a, b) => (b.ratios.cpuPerDelivery > a.ratios.cpuPerDelivery ? b : a));
  const target = { op: '<=' as const, value: SSE_TARGET };

  const metrics: Record<string, string> = {};
  for (const size of measured) {
    const { subject, baseline } = size.sides;
    const n = size.subscribers;
    const ok = meetsTarget(size.ratios.cpuPerDelivery, target);
    metrics[`G7 server CPU per delivery at N=${n}: SSE / graphql-ws (ratio, target ≤ ${SSE_TARGET})`] =
      `${µs(subject.cpuMicrosPerDelivery)} / ${µs(baseline.cpuMicrosPerDelivery)} (**${size.ratios.cpuPerDelivery.toFixed(2)}**, per rep ${size.ratios.perRepCpu.join(', ')}) — ${ok ? 'pass' : 'FAIL'}`;
    metrics[`N=${n}: publish → last receipt, SSE / graphql-ws (median over events)`] =
      `${ms(subject.lastReceiptMs)} / ${ms(baseline.lastReceiptMs)}`;
    metrics[`N=${n}: change → receipt p50 / p99, SSE; graphql-ws`] =
      `${ms(subject.latency.p50)} / ${ms(subject.latency.p99)}; ${ms(baseline.latency.p50)} / ${ms(baseline.latency.p99)}`;
    metrics[`N=${n}: heap per idle subscription, SSE / graphql-ws`] =
      `${kib(subject.heapBytesPerSubscription)} / ${kib(baseline.heapBytesPerSubscription)}`;
    metrics[`N=${n}: other load on the machine during the windows (cores, worst rep), SSE / graphql-ws windows`] =
      `${subject.otherLoadCores.toFixed(2)} / ${baseline.otherLoadCores.toFixed(2)}`;
  }
  for (const size of skipped) metrics[`N=${size.subscribers}`] = `not measured: ${size.skipped}`;
  const errorSamples = measured.flatMap((size) => [
    ...size.sides.subject.errorSamples,
    ...size.sides.baseline.errorSamples,
  ]);

  return {
    name: 'sse',
    title: 'SSE fan-out: server CPU per delivery ÷ graphql-ws',
    description: `N subscribers of \`${FANOUT_QUERY}\` on the real server over SSE (graphql-sse distinct connections, POST /graphql/stream) against N over graphql-ws, same changes through the StateStore, in the same run: G7 server CPU per delivered event, SSE ÷ WebSocket (≤ ${SSE_TARGET}). The headline is the size where it is worst.`,
    subject: {
      label: `server CPU per delivered event over SSE at N=${worst.subscribers} (median)`,
      value: worst.sides.subject.cpuMicrosPerDelivery,
      unit: 'µs',
    },
    baseline: {
      label: `server CPU per delivered event over graphql-ws at N=${worst.subscribers} (median)`,
      value: worst.sides.baseline.cpuMicrosPerDelivery,
      unit: 'µs',
    },
    ratio: worst.ratios.cpuPerDelivery,
    target,
    pass: errors === 0 && skipped.length === 0 && measured.every((s) => meetsTarget(s.ratios.cpuPerDelivery, target)),
    errors,
    metrics,
    notes: [
      'Both sides are the real server (buildApp) in processes of their own, local development mode, each on a fresh migrated SQLite file with the demo data; changes are `services.store.putTask(...)` calls as in the fan-out benchmark (bench/fanout.ts, whose notes on CPU, latency and heap measurement apply).',
      'Load: one client process per side; the SSE client holds one HTTP/1.1 connection per subscription (no pooling) and parses every `event: next` block; the graphql-ws client one WebSocket per subscription.',
      ...(errorSamples.length ? [`ERRORS: ${errorSamples.join(' | ')}`] : []),
    ],
    details: { settings: { sizes: options.sizes, reps: options.reps, target: SSE_TARGET }, sizes },
  };
}
