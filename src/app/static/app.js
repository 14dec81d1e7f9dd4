// Links pages: forms send JSON to the API with fetch (same origin, so the browser's
// Origin header passes the CSRF check); no framework, no build step.
'use strict';

async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new Error('Could not reach the server. Check your connection and try again.');
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401 && !path.startsWith('/api/log')) {
    throw new Error('Your session has ended. Log in again to continue.');
  }
  if (!res.ok)
    throw new Error((data && data.error && data.error.message) || 'Request failed (' + res.status + ').');
  return data;
}

/** Shows (or with null, clears) the error of a form, or of the page. */
function showError(scope, err) {
  const p = scope.querySelector('.error') || document.querySelector('main .error');
  if (!p) return;
  p.textContent = err ? err.message : '';
  p.hidden = !err;
}

function setStatus(text) {
  const status = document.getElementById('status');
  if (status) status.textContent = text;
}

function onSubmit(id, handler) {
  const form = document.getElementById(id);
  if (!form) return;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, null);
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      await handler(form, Object.fromEntries(new FormData(form)));
    } catch (err) {
      showError(form, err);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

function closeEditor(row) {
  const form = row.querySelector('form.edit');
  form.hidden = true;
  form.reset();
  row.querySelector('.target-link').hidden = false;
  const open = row.querySelector('button.edit-open');
  open.setAttribute('aria-expanded', 'false');
  open.hidden = false;
}

function openEditor(row) {
  const form = row.querySelector('form.edit');
  form.hidden = false;
  row.querySelector('.target-link').hidden = true;
  const open = row.querySelector('button.edit-open');
  open.setAttribute('aria-expanded', 'true');
  open.hidden = true;
  const input = form.querySelector('input[name=url]');
  input.focus();
  input.select();
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Days the clicks chart shows, ending today (UTC, the day clicks are counted in). */
const CHART_DAYS = 30;

function svg(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * A bar chart of a link's daily clicks over the last CHART_DAYS days, drawn as SVG elements
 * (no inline style or script, so the page's CSP holds); days without clicks are zero.
 */
function clicksChart(code, stats) {
  const byDay = new Map(stats.daily.map((d) => [d.day, d.clicks]));
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  const days = [];
  for (let i = CHART_DAYS - 1; i >= 0; i--) {
    const day = new Date(today - i * 86_400_000).toISOString().slice(0, 10);
    days.push({ day, clicks: byDay.get(day) || 0 });
  }
  const total = days.reduce((n, d) => n + d.clicks, 0);
  const peak = Math.max(0, ...days.map((d) => d.clicks));
  const max = Math.max(1, peak);
  const W = 600;
  const H = 120;
  const left = 32;
  const bottom = 18;
  const bar = (W - left) / CHART_DAYS;
  const chart = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `Daily clicks of ${code}, last ${CHART_DAYS} days: ${total} in all, at most ${peak} a day`,
  });
  chart.append(
    svg('line', { class: 'axis', x1: left, x2: W, y1: H - bottom, y2: H - bottom }),
    svg('text', { class: 'label', x: left - 4, y: 10, 'text-anchor': 'end' }, String(max)),
    svg('text', { class: 'label', x: left - 4, y: H - bottom, 'text-anchor': 'end' }, '0'),
    svg('text', { class: 'label', x: left, y: H - 4 }, days[0].day),
    svg('text', { class: 'label', x: W, y: H - 4, 'text-anchor': 'end' }, days[days.length - 1].day),
  );
  days.forEach((d, i) => {
    const h = ((H - bottom - 6) * d.clicks) / max;
    const rect = svg('rect', {
      class: 'bar',
      'data-day': d.day,
      'data-clicks': d.clicks,
      x: (left + i * bar + 1).toFixed(1),
      y: (H - bottom - h).toFixed(1),
      width: Math.max(1, bar - 2).toFixed(1),
      height: h.toFixed(1),
    });
    rect.append(svg('title', {}, `${d.day}: ${d.clicks} click${d.clicks === 1 ? '' : 's'}`));
    chart.append(rect);
  });
  return { chart, total };
}

/** Shows or hides the chart row under a link's row, loading its stats when shown. */
async function toggleChart(row, button) {
  const code = row.dataset.code;
  const existing = document.getElementById('chart-' + code);
  if (existing) {
    existing.remove();
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  button.disabled = true;
  try {
    const stats = await api('GET', '/api/links/' + encodeURIComponent(code) + '/stats');
    const { chart, total } = clicksChart(code, stats);
    const tr = document.createElement('tr');
    tr.id = 'chart-' + code;
    tr.className = 'chart-row';
    const td = document.createElement('td');
    td.colSpan = row.children.length;
    const caption = document.createElement('p');
    caption.className = 'chart-caption';
    caption.textContent = `/${code}: ${total} click${total === 1 ? '' : 's'} in the last ${CHART_DAYS} days, ${stats.clicks} in all`;
    td.append(caption, chart);
    tr.append(td);
    row.after(tr);
    button.setAttribute('aria-expanded', 'true');
  } catch (err) {
    showError(document, err);
  } finally {
    button.disabled = false;
  }
}

function setUpDashboard(table) {
  const codeOf = (el) => el.closest('tr').dataset.code;

  table.addEventListener('submit', async (ev) => {
    const form = ev.target.closest('form.edit');
    if (!form) return;
    ev.preventDefault();
    const row = form.closest('tr');
    showError(document, null);
    setStatus('');
    const save = form.querySelector('button[type=submit]');
    save.disabled = true;
    try {
      const url = new FormData(form).get('url');
      const link = await api('PATCH', '/api/links/' + encodeURIComponent(codeOf(form)), { url });
      const a = row.querySelector('.target-link');
      a.textContent = link.url;
      a.href = link.url;
      // The form's default value is what Cancel and reset() go back to.
      form.querySelector('input[name=url]').defaultValue = link.url;
      closeEditor(row);
      row.querySelector('button.edit-open').focus();
      setStatus('Saved: /' + link.code + ' now goes to ' + link.url + '.');
    } catch (err) {
      showError(document, err);
    } finally {
      save.disabled = false;
    }
  });

  table.addEventListener('click', async (ev) => {
    const button = ev.target.closest('button');
    if (!button) return;
    const row = button.closest('tr');
    if (button.classList.contains('chart-open')) {
      showError(document, null);
      await toggleChart(row, button);
    } else if (button.classList.contains('edit-open')) {
      showError(document, null);
      openEditor(row);
    } else if (button.classList.contains('cancel')) {
      showError(document, null);
      closeEditor(row);
      row.querySelector('button.edit-open').focus();
    } else if (button.classList.contains('delete')) {
      const code = codeOf(button);
      if (!confirm('Delete /' + code + '? The short link will stop working.')) return;
      showError(document, null);
      setStatus('');
      button.disabled = true;
      try {
        await api('DELETE', '/api/links/' + encodeURIComponent(code));
        document.getElementById('chart-' + code)?.remove();
        row.remove();
        setStatus('Deleted /' + code + '.');
        if (!table.querySelector('tbody tr')) {
          table.hidden = true;
          document.getElementById('no-links').hidden = false;
        }
      } catch (err) {
        button.disabled = false;
        showError(document, err);
      }
    }
  });

  table.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    const form = ev.target.closest('form.edit');
    if (!form) return;
    const row = form.closest('tr');
    closeEditor(row);
    row.querySelector('button.edit-open').focus();
  });
}

document.addEventListener('DOMContentLoaded', () => {
  onSubmit('signup', async (_f, v) => {
    await api('POST', '/api/signup', { email: v.email, password: v.password });
    location.assign('/dashboard');
  });
  onSubmit('login', async (_f, v) => {
    await api('POST', '/api/login', { email: v.email, password: v.password });
    location.assign('/dashboard');
  });
  onSubmit('shorten', async (form, v) => {
    const result = form.querySelector('.result');
    result.hidden = true;
    const body = { url: v.url };
    if (v.code) body.code = v.code;
    const link = await api('POST', '/api/links', body);
    const a = document.getElementById('short-url');
    a.textContent = link.shortUrl;
    a.href = link.shortUrl;
    result.hidden = false;
    form.reset();
  });

  const logout = document.getElementById('logout');
  if (logout) {
    logout.addEventListener('click', async () => {
      logout.disabled = true;
      try {
        await api('POST', '/api/logout');
        location.assign('/');
      } catch (err) {
        logout.disabled = false;
        showError(document, err);
      }
    });
  }

  const table = document.getElementById('links');
  if (table) setUpDashboard(table);
});
