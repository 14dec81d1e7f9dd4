// Server-rendered pages. Forms post JSON to the API through app.js; without JS the pages
// still render and link to each other.
import type { FastifyRequest } from 'fastify';
import { esc, layout } from './html.ts';

export interface PageLink {
  code: string;
  url: string;
  shortUrl: string;
  createdAt: string;
  clicks: number;
}

type User = { email: string } | undefined;

// HTML pattern attributes are compiled with the `v` flag, where a bare "-" in a class is a
// syntax error (the browser then ignores the pattern and logs an error): escape it.
const CODE_PATTERN_ATTR = '[A-Za-z0-9_\\-]{3,32}';

export function homePage(user: User): string {
  const body = user
    ? `<h1>Shorten a link</h1>
<form id="shorten" class="card stack">
  <label>Long URL <input name="url" type="url" required maxlength="2048" placeholder="https://example.com/a/long/path"></label>
  <label>Custom code <span class="hint">optional, 3 to 32 letters, digits, _ or -</span>
    <input name="code" pattern="${CODE_PATTERN_ATTR}" maxlength="32" placeholder="my-code" autocomplete="off"></label>
  <button type="submit">Shorten</button>
  <p class="error" role="alert" hidden></p>
  <div class="result" hidden>
    <p>Your short link: <a id="short-url" href="#"></a></p>
    <p class="hint">It is on your <a href="/dashboard">dashboard</a>, with its clicks.</p>
  </div>
</form>`
    : `<h1>Short links, with their clicks counted</h1>
<div class="card stack">
  <p>Turn a long address into a short one you can share, and see how often it is followed.</p>
  <p><a class="button" href="/signup">Sign up</a> or <a href="/login">log in</a> to start.</p>
</div>`;
  return layout({ title: 'Shorten a link', user, path: '/', body });
}

function authPage(kind: 'signup' | 'login', user: User): string {
  const title = kind === 'signup' ? 'Sign up' : 'Log in';
  const other =
    kind === 'signup'
      ? `Have an account? <a href="/login">Log in</a>`
      : `New here? <a href="/signup">Sign up</a>`;
  const password =
    kind === 'signup'
      ? `<label>Password <span class="hint">at least 8 characters</span>
    <input name="password" type="password" required minlength="8" maxlength="256" autocomplete="new-password"></label>`
      : `<label>Password <input name="password" type="password" required maxlength="256" autocomplete="current-password"></label>`;
  return layout({
    title,
    user,
    path: `/${kind}`,
    body: `<h1>${title}</h1>
<form id="${kind}" class="card stack narrow">
  <label>Email <input name="email" type="email" required maxlength="254" autocomplete="email"></label>
  ${password}
  <button type="submit">${title}</button>
  <p class="error" role="alert" hidden></p>
</form>
<p>${other}</p>`,
  });
}

export const signupPage = (user: User) => authPage('signup', user);
export const loginPage = (user: User) => authPage('login', user);

function linkRow(l: PageLink): string {
  const code = esc(l.code);
  return `<tr data-code="${code}">
  <td class="short"><a href="${esc(l.shortUrl)}">${esc(l.shortUrl.replace(/^https?:\/\//, ''))}</a></td>
  <td class="target">
    <a class="target-link" href="${esc(l.url)}" rel="noopener noreferrer">${esc(l.url)}</a>
    <form class="edit" id="edit-${code}" hidden>
      <input name="url" type="url" required maxlength="2048" value="${esc(l.url)}" aria-label="New URL for ${code}">
      <span class="buttons"><button type="submit">Save</button> <button type="button" class="cancel secondary">Cancel</button></span>
    </form>
  </td>
  <td class="clicks">${l.clicks}</td>
  <td class="created"><time datetime="${esc(l.createdAt)}">${esc(l.createdAt.slice(0, 10))}</time></td>
  <td class="actions">
    <button type="button" class="chart-open secondary" aria-controls="chart-${code}" aria-expanded="false" aria-label="Daily clicks of ${code}">Chart</button>
    <button type="button" class="edit-open secondary" aria-controls="edit-${code}" aria-expanded="false" aria-label="Edit ${code}">Edit</button>
    <button type="button" class="delete danger" aria-label="Delete ${code}">Delete</button>
  </td>
</tr>`;
}

export function dashboardPage(user: { email: string }, links: PageLink[], nextCursor: string | null): string {
  // Both the table and the empty note are rendered, one hidden, so that app.js can show
  // the note when the last link on the page is deleted.
  const table = `<table id="links"${links.length ? '' : ' hidden'}>
<caption class="visually-hidden">Your links, newest first</caption>
<thead><tr><th scope="col">Short link</th><th scope="col">Target</th><th scope="col" class="clicks">Clicks</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>
${links.map(linkRow).join('\n')}
</tbody>
</table>`;
  const empty = `<p id="no-links" class="card"${links.length ? ' hidden' : ''}>No links yet. <a href="/">Shorten one</a>.</p>`;
  const more = nextCursor
    ? `<p class="more"><a href="/dashboard?cursor=${encodeURIComponent(nextCursor)}">Older links</a></p>`
    : '';
  return layout({
    title: 'Dashboard',
    user,
    path: '/dashboard',
    body: `<div class="title-row"><h1>Your links</h1><a class="button" href="/">Shorten a link</a></div>
<p class="error" role="alert" hidden></p>
<p id="status" class="status" role="status"></p>
${table}
${empty}
${more}`,
  });
}

/** /preview/:code: where a short link goes, to check before following it. */
export function previewPage(user: User, link: { code: string; url: string; shortUrl: string }): string {
  return layout({
    title: `Where ${link.code} goes`,
    user,
    body: `<h1>Where this short link goes</h1>
<div class="card stack">
  <p><a href="${esc(link.shortUrl)}">${esc(link.shortUrl.replace(/^https?:\/\//, ''))}</a> leads to</p>
  <p class="target"><a id="target" href="${esc(link.url)}" rel="noopener noreferrer nofollow">${esc(link.url)}</a></p>
</div>`,
  });
}

export function notFoundPage(_req: FastifyRequest): string {
  return layout({
    title: 'Not found',
    body: `<h1>Not found</h1>
<div class="card stack">
  <p>There is no link here. It may have been deleted, or the address is mistyped.</p>
  <p><a href="/">Go to Links</a></p>
</div>`,
  });
}
