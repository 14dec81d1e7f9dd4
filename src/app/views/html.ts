// HTML escaping and the page layout every view shares.
import { assets } from '../assets.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export interface LayoutOptions {
  title: string;
  body: string;
  user?: { email: string } | undefined;
}

export function layout({ title, body, user }: LayoutOptions): string {
  const nav = user
    ? `<a href="/dashboard">Dashboard</a> <span class="who">${esc(user.email)}</span> <button type="button" id="logout" class="link">Log out</button>`
    : `<a href="/login">Log in</a> <a href="/signup">Sign up</a>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Links</title>
<link rel="stylesheet" href="${assets.url('app.css')}">
<script src="${assets.url('app.js')}" defer></script>
</head>
<body>
<header><a class="brand" href="/">Links</a><nav>${nav}</nav></header>
<main>
${body}
</main>
</body>
</html>`;
}
