import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';

/**
 * The Grafana dashboard aggregates each metric over the instances the way the README "Metrics"
 * table says: an `instance` figure is summed, a `cluster` figure (every instance's runtime store
 * sees the whole cluster, so every instance reports it) is taken with max or min. With `sum`, two
 * replicas showed every task, task end and runtime event twice.
 */

const readme = readFileSync('README.md', 'utf8');
type Panel = { title: string; targets?: { expr: string }[] };
const dashboard = JSON.parse(readFileSync('deploy/grafana/market-runtime.json', 'utf8')) as { panels: Panel[] };

/** The metric names of the README table with `cluster` in its `counts` column. */
function clusterMetrics(): Set<string> {
  const header = readme.indexOf('| metric | type | labels | counts | what |');
  expect(header, 'README "Metrics" has a table with a counts column').toBeGreaterThan(0);
  const rows = readme.slice(header, readme.indexOf('\n\n', header)).split('\n').slice(2);
  const names = new Set<string>();
  for (const row of rows) {
    const [, metric = '', , , counts = ''] = row.split('|').map((cell) => cell.trim());
    expect(['instance', 'cluster'], `${metric}: counts`).toContain(counts);
    if (counts === 'cluster') names.add(metric.replaceAll('`', ''));
  }
  return names;
}

const AGGREGATORS = ['sum', 'max', 'min', 'avg', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile'];
/** An aggregation operator with its optional `by (…)` or `without (…)`, just before a `(`. */
const AGGREGATION = new RegExp(`\\b(${AGGREGATORS.join('|')})\\s*(?:(?:by|without)\\s*\\([^()]*\\)\\s*)?$`);

/**
 * The aggregation operators around the metric at `at`, innermost first, and the functions between
 * them (rate, histogram_quantile…), as written: `sum by (le) (rate(x[5m]))` gives ['rate', 'sum'].
 */
function enclosing(expr: string, at: number): string[] {
  const found: string[] = [];
  let depth = 0;
  for (let i = at - 1; i >= 0; i--) {
    if (expr[i] === ')') depth++;
    else if (expr[i] === '(') {
      if (depth > 0) {
        depth--;
        continue;
      }
      const before = expr.slice(0, i);
      const aggregation = AGGREGATION.exec(before);
      const call = /([a-z_]+)\s*$/.exec(before);
      if (aggregation) found.push(aggregation[1]!);
      else if (call) found.push(call[1]!);
    }
  }
  return found;
}

/** Every use of a `cluster` metric in the dashboard that sums (or counts, or averages) it over instances. */
function misAggregated(cluster: Set<string>, panels: Panel[]) {
  const wrong: { panel: string; metric: string; expr: string; around: string[] }[] = [];
  for (const panel of panels) {
    for (const { expr } of panel.targets ?? []) {
      for (const match of expr.matchAll(/\b(market|process|nodejs)_\w+/g)) {
        const name = match[0];
        const metric = name.replace(/_(bucket|sum|count)$/, '');
        if (!cluster.has(metric) && !cluster.has(name)) continue;
        const around = enclosing(expr, match.index);
        const outer = around.find((word) => AGGREGATORS.includes(word));
        // Buckets summed by le under histogram_quantile: a quantile, not a total.
        const quantile = name.endsWith('_bucket') && around.includes('histogram_quantile');
        if (quantile) continue;
        if (outer !== 'max' && outer !== 'min') wrong.push({ panel: panel.title, metric: name, expr, around });
      }
    }
  }
  return wrong;
}

describe('the Grafana dashboard over several instances', () => {
  test('takes every cluster-wide figure with max or min, never a sum over the instances', () => {
    const cluster = clusterMetrics();
    expect([...cluster].sort()).toEqual(
      expect.arrayContaining([
        'market_apps',
        'market_runtime_events_total',
        'market_tasks',
        'market_tasks_finished_total',
      ]),
    );
    expect(misAggregated(cluster, dashboard.panels)).toEqual([]);
  });

  test('reads the aggregation around a metric as written', () => {
    const around = (expr: string) => enclosing(expr, expr.indexOf('METRIC'));
    expect(around('sum by (le) (rate(METRIC_bucket[5m]))')).toEqual(['rate', 'sum']);
    expect(around('max by (type, status) (rate(METRIC[1m])) * 60')).toEqual(['rate', 'max']);
    expect(around('histogram_quantile(0.5, sum by (le) (rate(METRIC[1m])))')).toEqual([
      'rate',
      'sum',
      'histogram_quantile',
    ]);
    expect(around('count(METRIC == 0) or vector(0)')).toEqual(['count']);
    // What the check finds in a dashboard that sums a cluster-wide figure.
    const panels = [
      { title: 'summed', targets: [{ expr: 'sum by (status) (market_tasks)' }] },
      { title: 'bare', targets: [{ expr: 'market_tasks' }] },
      { title: 'taken with max', targets: [{ expr: 'max by (status) (market_tasks)' }] },
      { title: 'per instance', targets: [{ expr: 'sum(market_cohorts)' }] },
      {
        title: 'quantile',
        targets: [{ expr: 'histogram_quantile(0.9, sum by (le) (rate(market_tasks_bucket[1m])))' }],
      },
    ];
    expect(misAggregated(new Set(['market_tasks']), panels).map((entry) => entry.panel)).toEqual(['summed', 'bare']);
  });
});
