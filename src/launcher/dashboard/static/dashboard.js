// The dashboard page: every 2 s it reads the topology (/api/topology, what `ladder status`
// shows) and the figures of every node from Prometheus (its query API, proxied by this
// page's own server), all evaluated at one instant, and redraws the diagram; every 5 s it
// redraws the charts of the last minutes. Plain ES modules: no build step.
import uPlot from './uPlot.esm.js';
import { renderTopology } from './topology-view.js';

const REFRESH_MS = 2000;
const CHART_REFRESH_MS = 5000;
const CHART_WINDOW_S = 300;
const CHART_STEP_S = 2;

/** The figures of each node, by name: the recording rules of ladder-rules.yml. */
const NODE_QUERIES = {
  rate: 'ladder:node_request_rate:30s',
  errors: 'ladder:node_error_rate:30s',
  p50: 'ladder:node_latency_seconds:p50_30s',
  p99: 'ladder:node_latency_seconds:p99_30s',
  cpu: 'ladder:node_cpu_cores:30s',
  connections: 'ladder:node_connections',
  up: 'up',
  // A node restarted between two refreshes still shows: down within the last 20 s.
  upMin: 'min_over_time(up[20s])',
};

/** Rates on the arrows between tiers. */
const EDGE_QUERIES = {
  haproxy: 'sum(ladder:node_request_rate:30s{role="haproxy"})',
  web: 'sum(ladder:node_request_rate:30s{role="web"})',
  redis: 'sum(ladder:node_request_rate:30s{role="redis"})',
  // No series yet (no query sent so far) is no traffic.
  primary: 'sum(rate(ladder_db_queries_total{role="primary"}[30s])) or vector(0)',
  replica: 'sum(rate(ladder_db_queries_total{role="replica"}[30s])) or vector(0)',
};

async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

/** An instant query at `time` (seconds): a Map from node name (or '') to the value as Prometheus wrote it. */
async function instant(query, time) {
  const body = await getJson(`/api/v1/query?${new URLSearchParams({ query, time: String(time) })}`);
  const out = new Map();
  for (const r of body.data.result) out.set(r.metric.node ?? '', r.value[1]);
  return out;
}

async function figures(time) {
  const entries = await Promise.all(Object.entries(NODE_QUERIES).map(async ([k, q]) => [k, await instant(q, time)]));
  const f = Object.fromEntries(entries);
  const edges = new Map();
  await Promise.all(
    Object.entries(EDGE_QUERIES).map(async ([k, q]) => {
      const v = (await instant(q, time)).get('');
      if (v !== undefined) edges.set(k, v);
    }),
  );
  f.edges = edges;
  return f;
}

function entryRate(topo, f) {
  const roles = new Set(topo.nodes.map((n) => n.role));
  if (roles.has('varnish')) return f.rate.get(topo.nodes.find((n) => n.role === 'varnish').name);
  if (roles.has('haproxy')) return f.edges.get('haproxy');
  return f.edges.get('web');
}

function renderHeader(topo) {
  document.getElementById('rung').textContent = topo.rung ? `rung ${topo.rung}` : '';
  const counts = {};
  for (const n of topo.nodes) counts[n.role] = (counts[n.role] ?? 0) + 1;
  document.getElementById('summary').textContent = `${topo.state} · ${topo.nodes.length} nodes (${Object.entries(counts).map(([r, c]) => `${c} ${r}`).join(', ')}) · entry ${topo.entry ?? '–'}`;
  const nav = document.getElementById('links');
  if (nav.childElementCount === 0) {
    for (const [text, href] of [['Prometheus', topo.prometheus], ['Alertmanager', topo.alertmanager]]) {
      const a = document.createElement('a');
      a.href = href;
      a.textContent = text;
      nav.append(a);
    }
  }
}

function renderBottleneck(hot, topo) {
  const box = document.getElementById('bottleneck');
  box.replaceChildren();
  const span = document.createElement('span');
  span.className = 'banner';
  if (!hot) {
    span.textContent = 'No bottleneck: every tier is nearly idle.';
  } else {
    const node = topo.nodes.find((n) => n.name === hot.node);
    span.dataset.tier = hot.tier;
    span.textContent = `Bottleneck: ${hot.title.toLowerCase()} (${hot.node} at ${(hot.share * 100).toFixed(0)}% of ${node?.cpu ? `its ${node.cpu} core cap` : 'a core'})`;
  }
  box.append(span);
}

async function renderAlerts() {
  const list = document.getElementById('alert-list');
  const alerts = (await getJson('/api/v2/alerts?active=true&silenced=false&inhibited=false')).filter((a) => a.status.state === 'active');
  list.replaceChildren();
  if (alerts.length === 0) {
    const li = document.createElement('li');
    li.className = 'none';
    li.textContent = 'none firing';
    list.append(li);
  }
  for (const a of alerts) {
    const li = document.createElement('li');
    li.className = a.labels.severity ?? '';
    li.dataset.alert = a.labels.alertname;
    if (a.labels.node) li.dataset.node = a.labels.node;
    li.textContent = `${a.labels.alertname}: ${a.annotations.summary ?? ''}`;
    list.append(li);
  }
}

let lastTopo;
let lastFigures;

async function refresh() {
  // One instant for every query, so the figures shown belong together (and can be checked),
  // 2 s back: every scrape and rule evaluation stamped before it has been written by then.
  const time = Math.floor(Date.now() / 1000) - 2;
  const [topo, f] = await Promise.all([getJson('/api/topology'), figures(time)]);
  f.edges.set('entry', entryRate(topo, f));
  renderHeader(topo);
  const hot = renderTopology(document.getElementById('diagram'), document.getElementById('arrows'), document.getElementById('monitoring'), topo, f);
  renderBottleneck(hot, topo);
  await renderAlerts().catch(() => undefined); // Alertmanager restarting: the rest of the page still updates
  document.body.dataset.time = String(time);
  document.body.dataset.nodes = topo.nodes.map((n) => n.name).join(',');
  document.getElementById('updated').textContent = `updated ${new Date(time * 1000).toLocaleTimeString()}`;
  lastTopo = topo;
  lastFigures = f;
}

// Charts -------------------------------------------------------------------------------

const charts = new Map();

/** A range query as uPlot's columns: [times, series...], with the names of the series. */
async function range(query, end) {
  const start = end - CHART_WINDOW_S;
  const body = await getJson(`/api/v1/query_range?${new URLSearchParams({ query, start: String(start), end: String(end), step: String(CHART_STEP_S) })}`);
  const times = [];
  for (let t = start; t <= end; t += CHART_STEP_S) times.push(t);
  const index = new Map(times.map((t, i) => [t, i]));
  const series = body.data.result
    .map((r) => {
      const values = new Array(times.length).fill(null);
      for (const [t, v] of r.values) {
        const i = index.get(Math.round(t));
        if (i !== undefined) values[i] = Number(v);
      }
      return { name: r.metric.node ?? query, values };
    })
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  return { times, series };
}

const COLORS = ['#1565c0', '#c62828', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f', '#ad1457', '#4e342e', '#37474f', '#9e9d24'];

function drawChart(id, data, format) {
  const host = document.getElementById(id);
  const key = data.series.map((s) => s.name).join(',');
  const existing = charts.get(id);
  const columns = [data.times, ...data.series.map((s) => s.values)];
  if (existing && existing.key === key) {
    existing.plot.setData(columns);
    return;
  }
  existing?.plot.destroy();
  const width = Math.max(360, host.clientWidth - 16);
  const plot = new uPlot(
    {
      width,
      height: 200,
      series: [{}, ...data.series.map((s, i) => ({ label: s.name, stroke: COLORS[i % COLORS.length], width: 1.5, value: (_u, v) => (v === null ? '–' : format(v)) }))],
      axes: [{}, { values: (_u, ticks) => ticks.map(format), size: 60 }],
      scales: { x: { time: true } },
    },
    columns,
    host,
  );
  charts.set(id, { key, plot });
}

async function refreshCharts() {
  const end = Math.floor(Date.now() / 1000);
  const [rate, p99, cpu] = await Promise.all([
    range('ladder:node_request_rate:30s{role=~"web|haproxy|varnish"}', end),
    range('ladder:node_latency_seconds:p99_30s', end),
    range('ladder:node_cpu_cores:30s', end),
  ]);
  drawChart('chart-rate', rate, (v) => v.toFixed(v >= 10 ? 0 : 1));
  drawChart('chart-p99', { ...p99, series: p99.series.map((s) => ({ ...s, values: s.values.map((v) => (v === null ? null : v * 1000)) })) }, (v) => v.toFixed(v >= 10 ? 0 : 1));
  drawChart('chart-cpu', cpu, (v) => v.toFixed(2));
}

// Loop ----------------------------------------------------------------------------------

function loop(fn, ms) {
  const run = () =>
    fn()
      .catch((err) => {
        document.getElementById('updated').textContent = `could not update: ${err.message}`;
      })
      .finally(() => setTimeout(run, ms));
  run();
}

loop(refresh, REFRESH_MS);
loop(refreshCharts, CHART_REFRESH_MS);
// Arrows follow the boxes when the window changes size.
window.addEventListener('resize', () => {
  if (lastTopo && lastFigures) renderTopology(document.getElementById('diagram'), document.getElementById('arrows'), document.getElementById('monitoring'), lastTopo, lastFigures);
});
