// The Grafana dashboard asks only for metrics that exist: every metric name in its PromQL is one the
// worker's TransferMetrics registry exports (histograms as their _bucket/_sum/_count series).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TransferMetrics } from '../../src/observability/metrics.js';

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/dashboards/transfers.json', import.meta.url), 'utf8')) as {
  uid: string;
  panels: { title: string; targets: { expr: string }[] }[];
};

/** PromQL words that are not metric names: functions, aggregations and their modifiers. */
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'histogram_quantile', 'abs', 'ceil', 'floor', 'round',
  'clamp_min', 'clamp_max', 'label_replace', 'vector', 'scalar', 'time', 'avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time',
]);

/** The metric names an expression selects: label matchers, grouping labels and durations removed. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '$1') // grouping labels
    .replace(/\[[^\]]*\]/g, ''); // range durations
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w));
}

async function exported(): Promise<Set<string>> {
  const metrics = new TransferMetrics();
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${m.name}${suffix}`);
  }
  return names;
}

describe('deploy/grafana/dashboards/transfers.json', () => {
  it('reads metric names out of PromQL', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, status) (rate(transfer_duration_seconds_bucket{job="w"}[5m])))')).toEqual(['transfer_duration_seconds_bucket']);
    expect(metricNames('sum by (status, reason) (increase(transfer_outcomes_total{status!="COMPLETED"}[1h]))')).toEqual(['transfer_outcomes_total']);
  });

  it('queries only metrics TransferMetrics registers, and shows the transfer-level ones', async () => {
    const names = await exported();
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricNames(t.expr).map((name) => ({ panel: p.title, name }))));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((u) => !names.has(u.name))).toEqual([]);
    for (const name of ['transfer_duration_seconds_bucket', 'transfer_in_flight', 'transfer_awaiting_approval', 'transfer_money_moved_minor_units_total', 'transfer_outcomes_total']) {
      expect(used.map((u) => u.name)).toContain(name);
    }
  });

  it('has a stable uid and panels that do not overlap', () => {
    expect(dashboard.uid).toBe('transfers');
    const boxes = (dashboard.panels as unknown as { gridPos: { x: number; y: number; w: number; h: number } }[]).map((p) => p.gridPos);
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${JSON.stringify(a)} / ${JSON.stringify(b)}`).toBe(false);
      }
    }
  });
});
