// Links pages: forms send JSON to the API with fetch (same origin, so the browser's
// Origin header passes the CSRF check); no framework, no build step.
'use strict';

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && data.error && data.error.message) || 'Request failed (' + res.status + ')');
  return data;
}

function showError(scope, err) {
  const p = scope.querySelector('.error') || document.querySelector('main .error');
  if (!p) return;
  p.textContent = err ? err.message : '';
  p.hidden = !err;
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
    const body = { url: v.url };
    if (v.code) body.code = v.code;
    const link = await api('POST', '/api/links', body);
    const a = document.getElementById('short-url');
    a.textContent = link.shortUrl;
    a.href = link.shortUrl;
    form.querySelector('.result').hidden = false;
    form.reset();
  });

  const logout = document.getElementById('logout');
  if (logout) {
    logout.addEventListener('click', async () => {
      await api('POST', '/api/logout');
      location.assign('/');
    });
  }

  const table = document.getElementById('links');
  if (table) {
    table.addEventListener('submit', async (ev) => {
      const form = ev.target.closest('form.edit');
      if (!form) return;
      ev.preventDefault();
      showError(document, null);
      try {
        const link = await api('PATCH', '/api/links/' + encodeURIComponent(form.dataset.code), { url: new FormData(form).get('url') });
        const cell = form.closest('tr').querySelector('td.target a');
        cell.textContent = link.url;
        cell.href = link.url;
      } catch (err) {
        showError(document, err);
      }
    });
    table.addEventListener('click', async (ev) => {
      const button = ev.target.closest('button.delete');
      if (!button) return;
      showError(document, null);
      try {
        await api('DELETE', '/api/links/' + encodeURIComponent(button.dataset.code));
        button.closest('tr').remove();
      } catch (err) {
        showError(document, err);
      }
    });
  }
});
