// Draws the running topology: one column per tier, left to right in the order requests
// flow (users, edge, balancer, web servers, then the data tiers), each node with its live
// figures and state, arrows between tiers labelled with their request rates, and the
// monitoring nodes below. Rebuilt from scratch on every refresh: a few dozen elements.

/** Tiers by role: the column they stand in and their title. A role not listed gets a tier of its own in the data column. */
const TIERS = [
  { key: 'edge', roles: ['varnish'], column: 1, title: 'Edge' },
  { key: 'haproxy', roles: ['haproxy'], column: 2, title: 'Load balancer' },
  { key: 'web', roles: ['web'], column: 3, title: 'Web servers' },
  { key: 'worker', roles: ['worker', 'relay'], column: 3, title: 'Workers' },
  { key: 'redis', roles: ['redis'], column: 4, title: 'Redis' },
  { key: 'postgres', roles: ['postgres'], column: 4, title: 'Postgres primary' },
  { key: 'replicas', roles: ['postgres-replica'], column: 4, title: 'Replicas' },
  { key: 'monitoring', roles: ['prometheus', 'alertmanager'], column: -1, title: 'Monitoring' },
];

/** Arrows: from tier, to tier, and which figure labels them. */
const ARROWS = [
  { from: 'users', to: 'edge', rate: 'entry' },
  { from: 'users', to: 'haproxy', rate: 'entry', unless: 'edge' },
  { from: 'users', to: 'web', rate: 'entry', unless: ['edge', 'haproxy'] },
  { from: 'edge', to: 'haproxy', rate: 'haproxy' },
  { from: 'haproxy', to: 'web', rate: 'web' },
  { from: 'web', to: 'redis', rate: 'redis', unit: 'cmd/s' },
  { from: 'web', to: 'postgres', rate: 'primary', unit: 'q/s' },
  { from: 'web', to: 'replicas', rate: 'replica', unit: 'q/s' },
];

export function tierOf(role) {
  return TIERS.find((t) => t.roles.includes(role)) ?? { key: role, roles: [role], column: 4, title: role };
}

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
};

export function formatRate(v) {
  if (v === undefined) return '–';
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}/s`;
}

export function formatSeconds(v) {
  if (v === undefined || Number.isNaN(v)) return '–';
  return v >= 1 ? `${v.toFixed(2)} s` : `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms`;
}

/** One figure of a node: the raw value Prometheus gave (data-value) and its display. */
function figure(dl, name, raw, text) {
  dl.append(el('dt', {}, name), el('dd', { 'data-field': name, 'data-value': raw ?? '' }, text));
}

/** Whether a node is shown as down: the supervisor says it is not serving, or its target is or was just down. */
export function nodeHealth(node, f) {
  const up = f.up.get(node.name);
  const recentMin = f.upMin.get(node.name);
  if (node.state === 'starting' || node.state === 'stopping') return { cls: 'starting', text: node.state };
  if (node.state !== 'ready') return { cls: 'down', text: node.state };
  if (up !== undefined && Number(up) === 0) return { cls: 'down', text: 'down' };
  if (recentMin !== undefined && Number(recentMin) === 0) return { cls: 'down', text: 'was down' };
  if (up === undefined) return { cls: 'starting', text: 'no data' };
  return { cls: 'ok', text: 'up' };
}

function nodeBox(node, f) {
  const health = nodeHealth(node, f);
  const num = (m) => (m.has(node.name) ? Number(m.get(node.name)) : undefined);
  const box = el('div', { class: `node ${health.cls}`, 'data-node': node.name, 'data-role': node.role, 'data-up': f.up.get(node.name) ?? '' });
  box.append(el('span', { class: 'name' }, node.name), el('span', { class: 'state', 'data-field': 'state' }, health.text));
  const dl = el('dl');
  const rateUnit = node.role === 'postgres' || node.role === 'postgres-replica' ? 'tx' : node.role === 'redis' ? 'cmd' : 'req';
  figure(dl, 'rate', f.rate.get(node.name), `${formatRate(num(f.rate))}`.replace('/s', ` ${rateUnit}/s`));
  if (node.role === 'web') {
    figure(dl, 'p50', f.p50.get(node.name), formatSeconds(num(f.p50)));
    figure(dl, 'p99', f.p99.get(node.name), formatSeconds(num(f.p99)));
  }
  // A web server that never answered a 5xx has no such series: that is 0 errors.
  if (f.errors.has(node.name) || node.role === 'web' || node.role === 'haproxy') figure(dl, 'errors', f.errors.get(node.name), formatRate(num(f.errors) ?? (f.up.has(node.name) ? 0 : undefined)));
  const cpu = num(f.cpu);
  figure(dl, 'cpu', f.cpu.get(node.name), cpu === undefined ? '–' : `${cpu.toFixed(2)} core${node.cpu ? ` of ${node.cpu}` : ''}`);
  if (f.connections.has(node.name)) figure(dl, 'connections', f.connections.get(node.name), String(Math.round(num(f.connections))));
  if (node.restarts) figure(dl, 'restarts', String(node.restarts), String(node.restarts));
  box.append(dl);
  return box;
}

/** The tier whose busiest node uses the largest share of its CPU (its cap, else one core), or undefined when all are idle. */
export function bottleneck(nodes, f) {
  let best;
  for (const n of nodes) {
    const tier = tierOf(n.role);
    if (tier.key === 'monitoring' || !f.cpu.has(n.name)) continue;
    const share = Number(f.cpu.get(n.name)) / (n.cpu ?? 1);
    if (!(share > 0.05)) continue;
    if (!best || share > best.share) best = { tier: tier.key, title: tier.title, node: n.name, share };
  }
  return best;
}

/** Renders the diagram into `root`, its arrows into `svg`, the monitoring nodes into `monitoringRoot`; returns the bottleneck. */
export function renderTopology(root, svg, monitoringRoot, topo, f) {
  root.replaceChildren();
  svg.replaceChildren();
  const tiers = new Map();
  for (const n of topo.nodes) {
    const t = tierOf(n.role);
    if (!tiers.has(t.key)) tiers.set(t.key, { ...t, nodes: [] });
    tiers.get(t.key).nodes.push(n);
  }
  const hot = bottleneck(topo.nodes, f);
  const columns = new Map();
  const users = el('div', { class: 'users', 'data-tier': 'users' }, 'users');
  columns.set(0, el('div', { class: 'column' }, users));
  const tierEls = new Map([['users', users]]);
  const monitoring = el('div');
  for (const def of TIERS.concat([...tiers.values()].filter((t) => !TIERS.some((d) => d.key === t.key)))) {
    const t = tiers.get(def.key);
    if (!t) continue;
    const box = el('div', { class: `tier${hot?.tier === t.key ? ' bottleneck' : ''}`, 'data-tier': t.key }, el('h3', {}, t.title));
    for (const n of t.nodes) box.append(nodeBox(n, f));
    tierEls.set(t.key, box);
    if (t.column < 0) {
      monitoring.append(box);
      continue;
    }
    if (!columns.has(t.column)) columns.set(t.column, el('div', { class: 'column' }));
    columns.get(t.column).append(box);
  }
  for (const k of [...columns.keys()].sort((a, b) => a - b)) root.append(columns.get(k));
  monitoringRoot.replaceChildren(...monitoring.children);

  // Arrows, once the boxes are laid out.
  const base = svg.getBoundingClientRect();
  const NS = 'http://www.w3.org/2000/svg';
  const defs = document.createElementNS(NS, 'defs');
  defs.innerHTML = '<marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a6"/></marker>';
  svg.append(defs);
  for (const a of ARROWS) {
    const from = tierEls.get(a.from);
    const to = tierEls.get(a.to);
    const unless = [a.unless ?? []].flat();
    if (!from || !to || unless.some((u) => tierEls.has(u))) continue;
    const r1 = from.getBoundingClientRect();
    const r2 = to.getBoundingClientRect();
    const x1 = r1.right - base.left;
    const y1 = r1.top + r1.height / 2 - base.top;
    const x2 = r2.left - base.left;
    const y2 = r2.top + r2.height / 2 - base.top;
    const line = document.createElementNS(NS, 'line');
    for (const [k, v] of Object.entries({ x1, y1, x2, y2, 'marker-end': 'url(#head)' })) line.setAttribute(k, String(v));
    svg.append(line);
    const raw = f.edges.get(a.rate);
    const label = document.createElementNS(NS, 'text');
    label.setAttribute('x', String((x1 + x2) / 2 - 24));
    label.setAttribute('y', String((y1 + y2) / 2 - 6));
    label.setAttribute('data-arrow', `${a.from}-${a.to}`);
    label.setAttribute('data-value', raw ?? '');
      label.textContent = raw === undefined ? '–' : formatRate(Number(raw)).replace('/s', ` ${a.unit ?? 'req/s'}`);
    svg.append(label);
  }
  return hot;
}
