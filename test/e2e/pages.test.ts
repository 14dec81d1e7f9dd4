// The pages in a real browser (Debian's chromium driven by playwright-core): sign up, shorten,
// follow the short link, watch the click counted, edit, delete, log out. Every step checks
// what the page shows, and no page may log an error or a CSP violation.
//
// Needs /usr/bin/chromium (`apt-get install -y chromium`); playwright's own browser
// downloads are never used. LADDER_E2E_SCREENSHOTS=/some/dir saves a PNG of each page.
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestServer } from '../support/app.ts';

const CHROMIUM = '/usr/bin/chromium';
/** The other site links point at (a reserved .test name, RFC 6761). */
const TARGET_HOST = 'target.example.test';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Links may not point at loopback (the self-link rule, docs/api.md), so the target site
  // has a name of its own, which only this browser resolves, to the target server.
  `--host-resolver-rules=MAP ${TARGET_HOST} 127.0.0.1`,
];
const SCREENSHOTS = process.env.LADDER_E2E_SCREENSHOTS;

/** A page somewhere else that links point at: GET /one and /two answer small HTML pages. */
interface TargetServer {
  url: string;
  hits: string[];
  close(): Promise<void>;
}

async function startTargetServer(): Promise<TargetServer> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const name = /^\/(one|two)$/.exec(req.url ?? '')?.[1];
    if (!name) {
      res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    hits.push(`/${name}`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><html lang="en"><title>Target ${name}</title><h1>Target page ${name}</h1></html>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${TARGET_HOST}:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a page reported that it should not have: console errors, uncaught errors, CSP violations. */
interface Problem {
  kind: 'console' | 'pageerror';
  text: string;
  url: string;
}

function watchProblems(page: Page): Problem[] {
  const problems: Problem[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      problems.push({ kind: 'console', text: msg.text(), url: msg.location().url || page.url() });
    }
  });
  page.on('pageerror', (err) => problems.push({ kind: 'pageerror', text: err.message, url: page.url() }));
  return problems;
}

// CSP violations also reach the console, but this catches any that a browser reports only
// as an event (init scripts are injected by the browser itself, so CSP does not block them).
const REPORT_CSP_VIOLATIONS = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' in ' + e.documentURI);
});`;

let server: TestServer | undefined;
let target: TargetServer | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;

// Checked in the test itself, so that a missing browser is a failed test, never a skipped one.
const MISSING_CHROMIUM = existsSync(CHROMIUM)
  ? undefined
  : `The browser tests need Debian's chromium at ${CHROMIUM}: run \`apt-get install -y chromium\` (as root).`;

beforeAll(async () => {
  if (MISSING_CHROMIUM) return;
  if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  [server, target, browser] = await Promise.all([
    startTestServer({ clickFlushMs: 100 }),
    startTargetServer(),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
  ]);
  context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  await context.addInitScript(REPORT_CSP_VIOLATIONS);
  context.setDefaultTimeout(5_000);
});

afterAll(async () => {
  // Each is closed even if another fails to.
  const results = await Promise.allSettled([browser?.close(), server?.close(), target?.close()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
});

async function shot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * Forgets the one console error the browser logs for a response we asked for on purpose
 * (a 400 from a refused URL, the 404 page): those are the app working, not a problem.
 */
function expectFailedLoad(problems: Problem[], since: number, url: string, status: number): void {
  const i = problems.findIndex(
    (p, j) => j >= since && p.url === url && p.text.includes(`status of ${status} `),
  );
  if (i >= 0) problems.splice(i, 1);
}

/**
 * Runs one step of the flow; a failure names the step, the page the browser was on and
 * what the pages reported so far.
 */
async function step(page: Page, problems: Problem[], name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const reported = problems.length ? `\npages reported: ${JSON.stringify(problems, null, 2)}` : '';
    throw new Error(`step "${name}" failed on ${page.url()}: ${(err as Error).message}${reported}`, {
      cause: err,
    });
  }
}

describe('pages in a real browser', () => {
  it('signs up, shortens, follows, counts, edits, deletes and logs out', async () => {
    if (MISSING_CHROMIUM) throw new Error(MISSING_CHROMIUM);
    const page = await context!.newPage();
    const problems = watchProblems(page);
    const base = server!.url;
    const email = uniqueEmail();
    const firstTarget = `${target!.url}/one`;
    const secondTarget = `${target!.url}/two`;
    let shortUrl = '';
    let code = '';

    await step(page, problems, 'sign up', async () => {
      const res = await page.goto(`${base}/signup`);
      // The pages must work under the strict policy, not merely without one.
      expect(res?.headers()['content-security-policy']).toContain("script-src 'self'; style-src 'self'");
      expect(await page.title()).toBe('Sign up · Links');
      await shot(page, '1-signup');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill('correct horse battery');
      await page.getByRole('button', { name: 'Sign up' }).click();
      await page.waitForURL(`${base}/dashboard`);
    });

    await step(page, problems, 'empty dashboard', async () => {
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Your links');
      expect(await page.getByText(email).isVisible()).toBe(true);
      expect(await page.getByText('No links yet').isVisible()).toBe(true);
      expect(await page.getByRole('table').count()).toBe(0);
      await shot(page, '2-dashboard-empty');
    });

    await step(page, problems, 'a link to Links itself is refused, visibly', async () => {
      await page.goto(`${base}/`);
      const since = problems.length;
      await page.getByLabel('Long URL').fill(`${base}/dashboard`);
      await page.getByRole('button', { name: 'Shorten' }).click();
      await page.getByRole('alert').getByText('points back at this service').waitFor();
      expectFailedLoad(problems, since, `${base}/api/links`, 400);
      await shot(page, '3-home-error');
    });

    await step(page, problems, 'the browser itself refuses a malformed custom code', async () => {
      await page.getByLabel('Long URL').fill(firstTarget);
      const custom = page.getByLabel('Custom code');
      await custom.fill('no spaces');
      await page.getByRole('button', { name: 'Shorten' }).click();
      // An invalid pattern attribute is ignored by the browser (and logged as an error).
      expect(await custom.evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
      await custom.fill('');
    });

    await step(page, problems, 'shorten a link', async () => {
      await page.getByLabel('Long URL').fill(firstTarget);
      await page.getByRole('button', { name: 'Shorten' }).click();
      const link = page.getByRole('link', { name: new RegExp(`^${base}/[A-Za-z0-9]{8}$`) });
      await link.waitFor();
      shortUrl = (await link.textContent())!;
      expect(await link.getAttribute('href')).toBe(shortUrl);
      code = shortUrl.slice(base.length + 1);
      // The earlier error is gone once a shorten succeeds.
      expect(await page.getByRole('alert').isVisible()).toBe(false);
      await shot(page, '4-home-shortened');
    });

    // The dashboard shows short links without the scheme, as people write them.
    const row = () =>
      page
        .getByRole('row')
        .filter({ has: page.getByRole('link', { name: shortUrl.replace('http://', ''), exact: true }) });
    const clicksCell = () => row().locator('td.clicks');

    await step(page, problems, 'the dashboard lists the link with 0 clicks', async () => {
      await page.goto(`${base}/dashboard`);
      expect(await row().count()).toBe(1);
      expect(await row().getByRole('link').first().getAttribute('href')).toBe(shortUrl);
      expect(await row().getByRole('link', { name: firstTarget }).isVisible()).toBe(true);
      expect((await clicksCell().textContent())?.trim()).toBe('0');
      expect(await page.getByText('No links yet').isVisible()).toBe(false);
      await shot(page, '5-dashboard-one-link');
    });

    await step(page, problems, 'following the short link lands on the target', async () => {
      await page.goto(shortUrl);
      expect(page.url()).toBe(firstTarget);
      expect(await page.getByRole('heading', { name: 'Target page one' }).isVisible()).toBe(true);
      expect(target!.hits).toEqual(['/one']);
    });

    await step(page, problems, 'the click is counted within a few seconds', async () => {
      await page.goto(`${base}/dashboard`);
      const deadline = performance.now() + 5_000;
      let clicks = (await clicksCell().textContent())?.trim();
      while (clicks !== '1' && performance.now() < deadline) {
        await page.waitForTimeout(150);
        await page.reload();
        clicks = (await clicksCell().textContent())?.trim();
      }
      expect(clicks).toBe('1');
    });

    await step(page, problems, "the link's chart draws its daily clicks from the stats API, today's bar at 1", async () => {
      const today = new Date().toISOString().slice(0, 10);
      const open = row().getByRole('button', { name: `Daily clicks of ${code}` });
      expect(await open.getAttribute('aria-expanded')).toBe('false');
      const stats = page.waitForResponse((r) => r.url() === `${base}/api/links/${code}/stats`);
      await open.click();
      expect((await stats).status()).toBe(200);
      const chart = page.getByRole('img', { name: new RegExp(`^Daily clicks of ${code}, last 30 days: 1 in all, at most 1 a day$`) });
      await chart.waitFor();
      expect(await open.getAttribute('aria-expanded')).toBe('true');
      expect(await page.getByText(`/${code}: 1 click in the last 30 days, 1 in all`).isVisible()).toBe(true);
      const bars = chart.locator('rect.bar');
      expect(await bars.count()).toBe(30);
      const todayBar = chart.locator(`rect.bar[data-day="${today}"]`);
      expect(await todayBar.getAttribute('data-clicks')).toBe('1');
      // Drawn to scale: today's bar is the tallest there is, the other days have none.
      expect(Number(await todayBar.getAttribute('height'))).toBeGreaterThan(50);
      expect(await chart.locator('rect.bar[data-clicks="0"]').count()).toBe(29);
      expect(await todayBar.locator('title').textContent()).toBe(`${today}: 1 click`);
      await shot(page, '5b-dashboard-chart');
      // The same button hides it again.
      await open.click();
      await chart.waitFor({ state: 'detached' });
      expect(await open.getAttribute('aria-expanded')).toBe('false');
    });

    await step(
      page,
      problems,
      'an edit to a refused URL shows an error; Cancel keeps the old URL',
      async () => {
        await row()
          .getByRole('button', { name: `Edit ${code}` })
          .click();
        const since = problems.length;
        await row().getByLabel(`New URL for ${code}`).fill(`${base}/`);
        await row().getByRole('button', { name: 'Save' }).click();
        await page.getByRole('alert').getByText('points back at this service').waitFor();
        expectFailedLoad(problems, since, `${base}/api/links/${code}`, 400);
        await shot(page, '6-dashboard-error');
        await row().getByRole('button', { name: 'Cancel' }).click();
        expect(await row().getByRole('link', { name: firstTarget }).isVisible()).toBe(true);
        expect(await row().getByLabel(`New URL for ${code}`).isVisible()).toBe(false);
        expect(await page.getByRole('alert').isVisible()).toBe(false);
      },
    );

    await step(page, problems, 'edit the link', async () => {
      await row()
        .getByRole('button', { name: `Edit ${code}` })
        .click();
      await row().getByLabel(`New URL for ${code}`).fill(secondTarget);
      await row().getByRole('button', { name: 'Save' }).click();
      await row().getByRole('link', { name: secondTarget }).waitFor();
      expect(await page.getByRole('status').textContent()).toBe(
        `Saved: /${code} now goes to ${secondTarget}.`,
      );
      expect(await row().getByRole('link', { name: firstTarget }).count()).toBe(0);
      // Kept after a reload, and the short link now goes to the new target.
      await page.reload();
      expect(await row().getByRole('link', { name: secondTarget }).isVisible()).toBe(true);
      expect((await clicksCell().textContent())?.trim()).toBe('1');
      await shot(page, '7-dashboard-edited');
      await page.goto(shortUrl);
      expect(page.url()).toBe(secondTarget);
      expect(await page.getByRole('heading', { name: 'Target page two' }).isVisible()).toBe(true);
    });

    await step(page, problems, 'delete the link', async () => {
      await page.goto(`${base}/dashboard`);
      // With its chart open: the chart goes with the row.
      await row()
        .getByRole('button', { name: `Daily clicks of ${code}` })
        .click();
      await page.locator(`#chart-${code}`).waitFor();
      let asked = '';
      page.once('dialog', (dialog) => {
        asked = dialog.message();
        void dialog.accept();
      });
      await row()
        .getByRole('button', { name: `Delete ${code}` })
        .click();
      await row().waitFor({ state: 'detached' });
      expect(await page.locator(`#chart-${code}`).count()).toBe(0);
      expect(asked).toContain(`Delete /${code}?`);
      await page.getByText('No links yet').waitFor();
      expect(await page.getByRole('status').textContent()).toBe(`Deleted /${code}.`);
      expect(await page.getByRole('table').count()).toBe(0);
      await page.reload();
      expect(await row().count()).toBe(0);
      expect(await page.getByText('No links yet').isVisible()).toBe(true);
    });

    await step(page, problems, 'the deleted short link shows the 404 page', async () => {
      const since = problems.length;
      const res = await page.goto(shortUrl);
      expect(res?.status()).toBe(404);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Not found');
      expect(await page.getByRole('link', { name: 'Go to Links' }).isVisible()).toBe(true);
      await shot(page, '8-not-found');
      expectFailedLoad(problems, since, shortUrl, 404);
    });

    await step(page, problems, 'log out', async () => {
      await page.goto(`${base}/dashboard`);
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL(`${base}/`);
      expect(await page.getByRole('link', { name: 'Log in' }).first().isVisible()).toBe(true);
      await shot(page, '9-home-logged-out');
      await page.goto(`${base}/dashboard`);
      expect(page.url()).toBe(`${base}/login`);
      expect(await page.getByRole('button', { name: 'Log in' }).isVisible()).toBe(true);
      await shot(page, '10-login');
    });

    expect(problems).toEqual([]);
    await page.close();
  });
});
