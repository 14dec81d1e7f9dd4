// HTML escaping and the page layout every view shares.
import { assets } from '../assets.ts';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export interface LayoutOptions {
  title: string;
  body: string;
  user?: { email: string } | undefined;
  /** The page's own path, marked in the navigation with aria-current. */
  path?: string;
}

function navLink(href: string, text: string, path: string | undefined, cls = ''): string {
  const current = href === path ? ' aria-current="page"' : '';
  return `<a href="${href}"${cls ? ` class="${cls}"` : ''}${current}>${text}</a>`;
}

export function layout({ title, body, user, path }: LayoutOptions): string {
  const nav = user
    ? `${navLink('/dashboard', 'Dashboard', path)} <span class="who">${esc(user.email)}</span> <button type="button" id="logout" class="link">Log out</button>`
    : `${navLink('/login', 'Log in', path)} ${navLink('/signup', 'Sign up', path, 'button')}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Links</title>
<link rel="icon" href="${assets.url('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${assets.url('app.css')}">
<script src="${assets.url('app.js')}" defer></script>
</head>
<body>
<header><a class="brand" href="/">Links</a><nav aria-label="Account">${nav}</nav></header>
<main>
${body}
</main>
</body>
</html>`;
}
