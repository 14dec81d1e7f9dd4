// Monitoring's pieces that need no process: when a topology is monitored, HAProxy's exporter
// frontend, Alertmanager's configuration, the dashboard's view of the state.
import { describe, expect, it } from 'vitest';
import { alertmanagerConfig } from '../../src/launcher/components/alertmanager.ts';
import { topologyOf } from '../../src/launcher/dashboard/dashboard-server.ts';
import { haproxyConfig } from '../../src/launcher/haproxy.ts';
import { buildTopology, MONITOR_FROM_RUNG } from '../../src/topology/topology.ts';

describe('the monitoring feature', () => {
  it('is on from rung 3 unless --no-monitor, and on below with --monitor', () => {
    expect(MONITOR_FROM_RUNG).toBe(3);
    expect(buildTopology({ rung: 2 }).features.monitoring).toBe(false);
    expect(buildTopology({ rung: 3 }).features.monitoring).toBe(true);
    expect(buildTopology({ rung: 7 }).features.monitoring).toBe(true);
    expect(buildTopology({ rung: 7, monitor: false }).features.monitoring).toBe(false);
    expect(buildTopology({ rung: 2, monitor: true }).features.monitoring).toBe(true);
  });
});

describe('HAProxy exporter frontend', () => {
  const base = { errorFilesDir: '/e', bindHost: '127.0.0.1', bindPort: 8080, adminSocket: '/s', servers: [], slots: 2, balance: 'roundrobin' as const, sticky: false };
  it('is a frontend of its own on loopback, serving /metrics only', () => {
    const cfg = haproxyConfig({ ...base, metricsPort: 9101 });
    expect(cfg).toMatch(/frontend metrics\n  bind 127\.0\.0\.1:9101\n  http-request use-service prometheus-exporter if \{ path \/metrics \}/);
    // Never on the public frontend.
    const links = cfg.slice(cfg.indexOf('frontend links'), cfg.indexOf('frontend metrics'));
    expect(links).not.toContain('prometheus-exporter');
  });
  it('is absent without monitoring', () => {
    expect(haproxyConfig(base)).not.toContain('prometheus-exporter');
  });
});

describe('Alertmanager configuration', () => {
  it('groups per alert and node with short waits, and pages nobody', () => {
    const cfg = JSON.parse(alertmanagerConfig().split('\n').slice(1).join('\n'));
    expect(cfg.route).toMatchObject({ receiver: 'ladder', group_by: ['alertname', 'node'], group_wait: '1s' });
    expect(cfg.receivers).toEqual([{ name: 'ladder' }]);
  });
});

describe('the dashboard view of the state', () => {
  it('lists the nodes as `ladder status` does, without the exporter bookkeeping', () => {
    const view = topologyOf(
      {
        entry: 'http://127.0.0.1:1',
        rung: 3,
        state: 'ready',
        supervisorPid: 1,
        startedAt: null,
        notes: [],
        dashboard: 'http://127.0.0.1:3',
        nodes: [{ name: 'postgres', role: 'postgres', pid: 5, port: 2, url: 'postgres://127.0.0.1:2/links', state: 'ready', restarts: 0, exporter: { pid: 6, port: 7 } }],
      },
      'http://127.0.0.1:3',
      { prometheusUrl: 'http://127.0.0.1:4', alertmanagerUrl: 'http://127.0.0.1:5' },
    );
    expect(view.nodes).toEqual([{ name: 'postgres', role: 'postgres', pid: 5, port: 2, url: 'postgres://127.0.0.1:2/links', state: 'ready', restarts: 0 }]);
    expect(view).toMatchObject({ rung: 3, dashboard: 'http://127.0.0.1:3', prometheus: 'http://127.0.0.1:4' });
  });
});
