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

export function homePage(user: User): string {
  const form = user
    ? `<form id="shorten" class="card" data-api="/api/links">
  <label>Long URL <input name="url" type="url" required maxlength="2048" placeholder="https://example.com/a/long/path"></label>
  <label>Custom code (optional) <input name="code" pattern="[A-Za-z0-9_-]{3,32}" maxlength="32" placeholder="my-code"></label>
  <button type="submit">Shorten</button>
  <p class="error" role="alert" hidden></p>
  <p class="result" hidden>Short link: <a id="short-url" href="#"></a></p>
</form>`
    : `<p class="card"><a href="/signup">Sign up</a> or <a href="/login">log in</a> to shorten links and count their clicks.</p>`;
  return layout({ title: 'Shorten a link', user, body: `<h1>Shorten a link</h1>\n${form}` });
}

function authPage(kind: 'signup' | 'login', user: User): string {
  const title = kind === 'signup' ? 'Sign up' : 'Log in';
  const other = kind === 'signup' ? `Have an account? <a href="/login">Log in</a>` : `New here? <a href="/signup">Sign up</a>`;
  return layout({
    title,
    user,
    body: `<h1>${title}</h1>
<form id="${kind}" class="card auth" data-api="/api/${kind}">
  <label>Email <input name="email" type="email" required maxlength="254" autocomplete="email"></label>
  <label>Password <input name="password" type="password" required minlength="${kind === 'signup' ? 8 : 1}" maxlength="256" autocomplete="${kind === 'signup' ? 'new-password' : 'current-password'}"></label>
  <button type="submit">${title}</button>
  <p class="error" role="alert" hidden></p>
</form>
<p>${other}</p>`,
  });
}

export const signupPage = (user: User) => authPage('signup', user);
export const loginPage = (user: User) => authPage('login', user);

export function dashboardPage(user: { email: string }, links: PageLink[], nextCursor: string | null): string {
  const rows = links
    .map(
      (l) => `<tr data-code="${esc(l.code)}">
  <td><a class="short" href="${esc(l.shortUrl)}">${esc(l.code)}</a></td>
  <td class="target"><a href="${esc(l.url)}" rel="noopener noreferrer">${esc(l.url)}</a></td>
  <td class="clicks">${l.clicks}</td>
  <td class="actions">
    <form class="edit" data-code="${esc(l.code)}"><input name="url" type="url" required maxlength="2048" value="${esc(l.url)}" aria-label="New URL for ${esc(l.code)}"><button type="submit">Save</button></form>
    <button type="button" class="delete" data-code="${esc(l.code)}">Delete</button>
  </td>
</tr>`,
    )
    .join('\n');
  const table = links.length
    ? `<table id="links"><thead><tr><th>Code</th><th>Target</th><th>Clicks</th><th></th></tr></thead><tbody>
${rows}
</tbody></table>`
    : `<p id="no-links">No links yet. <a href="/">Shorten one</a>.</p>`;
  const more = nextCursor ? `<p><a href="/dashboard?cursor=${encodeURIComponent(nextCursor)}">Older links</a></p>` : '';
  return layout({
    title: 'Dashboard',
    user,
    body: `<h1>Your links</h1>\n<p class="error" role="alert" hidden></p>\n${table}\n${more}\n<p><a href="/">Shorten another</a></p>`,
  });
}

export function notFoundPage(_req: FastifyRequest): string {
  return layout({
    title: 'Not found',
    body: `<h1>Not found</h1><p>There is no link here. It may have been deleted, or the address is mistyped.</p><p><a href="/">Go to Links</a></p>`,
  });
}
