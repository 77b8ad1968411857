import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Histogram, type Registry } from 'prom-client';
import { createAgentMetrics } from '../../agent/agent-metrics.js';
import { createControllerMetrics } from '../../controller/observability/controller-metrics.js';

interface Dashboard {
  readonly panels: readonly { readonly title: string; readonly targets: readonly { readonly expr: string }[] }[];
}

/** Series names a registry exposes (a histogram's _bucket, _sum and _count included), without collecting. */
function seriesNames(registry: Registry): Set<string> {
  const out = new Set<string>();
  for (const m of registry.getMetricsAsArray()) {
    const { name } = m as unknown as { name: string };
    out.add(name);
    if (m instanceof Histogram) for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
  }
  return out;
}

describe('Grafana dashboard (deploy/grafana/vigil-dashboard.json)', () => {
  it('charts only metrics the controller and the agent expose', async () => {
    const dashboard = JSON.parse(readFileSync(new URL('../../../deploy/grafana/vigil-dashboard.json', import.meta.url), 'utf8')) as Dashboard;
    const controller = seriesNames(createControllerMetrics().registry);
    const fakeStore = { outbox: {} as never, meta: {} as never };
    const agent = seriesNames(createAgentMetrics({ store: fakeStore, monitor: { scheduledOnly: () => [], busy: () => false }, clock: () => new Date() }).registry);
    const known = new Set([...controller, ...agent]);
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      assert.ok(panel.targets.length > 0, `${panel.title} has a query`);
      for (const { expr } of panel.targets) for (const [name] of expr.matchAll(/\b(?:vigil|nodejs|process)_[a-z0-9_]+\b/g)) used.add(name);
    }
    const unknown = [...used].filter((n) => !known.has(n));
    assert.deepEqual(unknown, [], 'every metric the dashboard queries exists');
    for (const name of ['vigil_ingest_events_total', 'vigil_agent_streams_connected', 'vigil_agent_queue_deltas', 'vigil_agent_certificate_expiry_timestamp_seconds']) assert.ok(used.has(name), `${name} is charted`);
  });
});
