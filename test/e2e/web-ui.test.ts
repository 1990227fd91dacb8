import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Locator, Page } from 'playwright-core';
import { startTransfer } from '../../src/client.js';
import { ensureChromium, launchChromium, type HeadlessChromium } from '../support/chromium.js';
import { withTransferWorker } from '../support/control.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { connectDevServer } from '../support/temporal.js';
import { openFunded, outcomeOf } from '../support/transfers.js';

/**
 * What an operator sees: headless Chromium on the dev server's Web UI (UI 2.42 with CLI 1.5.1),
 * after three transfers with distinct outcomes ran through our worker. Screenshots land in
 * test-results/ui/ for a human to check.
 */

/** Run again by test/server-profile/web-ui.test.ts against the server profile's UI server: its own folder. */
const SHOTS = fileURLToPath(new URL(inject('temporalProfile') === 'server' ? '../../test-results/ui/server-profile/' : '../../test-results/ui/', import.meta.url));
const WAIT = 15_000;
const inCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

let t: TestLedger;
let env: TestWorkflowEnvironment;
let browser: HeadlessChromium | undefined;
let skipReason: string | undefined;

const run = randomBytes(3).toString('hex');
const ids = { completed: `ui-${run}-completed`, failed: `ui-${run}-failed`, compensated: `ui-${run}-compensated` };
const accounts = { payer: '', payee: '', poor: '', frozen: '' };

beforeAll(async () => {
  // The browser first: without one there is nothing to look at (and a fresh CI machine installs it here).
  const chromium = await ensureChromium();
  if ('missing' in chromium) {
    if (inCi) throw new Error(chromium.missing);
    skipReason = `skipped outside CI: ${chromium.missing}`;
    return;
  }

  t = await createTestLedger();
  env = await connectDevServer();
  accounts.payer = await openFunded(t.ledger, 0, `ui-${run}-payer`, '10000');
  accounts.payee = await openFunded(t.ledger, 1, `ui-${run}-payee`, '0');
  accounts.poor = await openFunded(t.ledger, 0, `ui-${run}-poor`, '1000');
  accounts.frozen = await openFunded(t.ledger, 1, `ui-${run}-frozen`, '0');
  await t.ledger.setStatus(accounts.frozen, 'frozen');

  // Started the way our own CLI starts them (static summary/details, search attributes at start).
  const results = await withTransferWorker(env, t.ledger, {}, async (taskQueue) => {
    const started = await Promise.all([
      startTransfer(env.client, taskQueue, { transferId: ids.completed, from: accounts.payer, to: accounts.payee, amount: '2500', currency: 'USD', memo: 'rent' }),
      startTransfer(env.client, taskQueue, { transferId: ids.failed, from: accounts.poor, to: accounts.payee, amount: '5000', currency: 'USD' }),
      startTransfer(env.client, taskQueue, { transferId: ids.compensated, from: accounts.payer, to: accounts.frozen, amount: '1200', currency: 'USD' }),
    ]);
    return Promise.all(started.map((s) => outcomeOf(s.handle)));
  });
  expect(results.map((r) => [r.status, r.reason])).toEqual([
    ['COMPLETED', undefined],
    ['FAILED', 'INSUFFICIENT_FUNDS'],
    ['COMPENSATED', 'ACCOUNT_FROZEN'],
  ]);

  await mkdir(SHOTS, { recursive: true });
  browser = await launchChromium(chromium.path, { viewport: { width: 1440, height: 1800 } });
}, 12 * 60_000); // a fresh machine may first have to apt-get install chromium

afterAll(async () => {
  await browser?.close();
  await env?.teardown();
  await t?.drop();
});

async function newPage(): Promise<Page> {
  const page = await browser!.context.newPage();
  page.setDefaultTimeout(WAIT);
  page.setDefaultNavigationTimeout(WAIT);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

const listUrl = (query: string) => `${inject('devServerUi')}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;

/**
 * Opens the workflow list filtered by a visibility query and waits until `id` is listed. Visibility
 * is eventually consistent, so the page is reloaded (bounded) until the row shows up.
 */
async function openList(page: Page, query: string, id: string): Promise<Locator> {
  const row = page.getByRole('link', { name: id, exact: true });
  const deadline = Date.now() + WAIT;
  await page.goto(listUrl(query));
  for (;;) {
    try {
      await row.first().waitFor({ state: 'visible', timeout: 3_000 });
      return row.first();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${id} not listed for ${query} within ${WAIT} ms: ${String(error)}`);
      await page.reload();
    }
  }
}

/** The header of a workflow page: id heading and status badge. */
async function expectHeader(page: Page, id: string, status: string): Promise<void> {
  const heading = page.getByTestId('workflow-id-heading');
  await expect.poll(() => heading.innerText(), { timeout: WAIT }).toBe(id);
  const header = page.locator('header', { has: heading });
  await header.getByText(status, { exact: true }).waitFor({ state: 'visible' });
}

/**
 * Step summaries as the Event History table shows them, oldest first: the Summary field of each
 * "Local Activity" row (the ledger steps) and "Activity Task Scheduled" row (the compensations).
 * The policy lookup is a local activity without a summary.
 */
async function scheduledSummaries(page: Page, count: number): Promise<string[]> {
  const rows = page.getByTestId('event-summary-row').filter({ hasText: /Activity Task Scheduled|Local Activity/ }).filter({ hasText: 'Summary' });
  await expect.poll(() => rows.count(), { timeout: WAIT }).toBe(count);
  const texts = await rows.allInnerTexts();
  return texts
    .map((text) => text.split('\n').map((l) => l.trim()).filter(Boolean))
    .map((lines) => lines[lines.indexOf('Summary') + 1] ?? `(no summary in: ${lines.join(' | ')})`)
    .reverse(); // the table is newest first
}

/** Opens a tab of the workflow page (History, Search Attributes, User Metadata, …) and returns the main area's text. */
async function openTab(page: Page, name: string, waitForText: string): Promise<string> {
  await page.getByRole('tab', { name }).click();
  await page.getByRole('main').getByText(waitForText).first().waitFor({ state: 'visible' });
  return page.getByRole('main').innerText();
}

function searchAttributesFrom(text: string): Record<string, unknown> {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  const parsed = JSON.parse(text.slice(start, end + 1)) as { indexedFields?: Record<string, unknown> };
  return parsed.indexedFields ?? {};
}

describe('Temporal Web UI, as an operator uses it', () => {
  it('the list shows which transfers did not complete: Failed, with the outcome as the failure type', async ({ skip }) => {
    if (skipReason) skip(skipReason);
    const page = await newPage();
    try {
      // Only this test's transfers (other tests share the server); the status column is the point.
      const query = `WorkflowId IN ('${ids.completed}', '${ids.failed}', '${ids.compensated}')`;
      await openList(page, query, ids.compensated);
      await openList(page, query, ids.completed);
      const statusOf = async (id: string) => {
        const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: id, exact: true }) });
        return (await row.first().innerText()).split(/\s+/).find((word) => ['Completed', 'Failed', 'Running', 'Canceled', 'Terminated'].includes(word));
      };
      expect(await statusOf(ids.completed)).toBe('Completed');
      expect(await statusOf(ids.failed)).toBe('Failed');
      expect(await statusOf(ids.compensated)).toBe('Failed');
      await shot(page, 'list-outcomes');

      // The run page of a compensated transfer: the failure names the outcome and why.
      await page.getByRole('link', { name: ids.compensated, exact: true }).first().click();
      await page.waitForURL(/\/history$/);
      await expectHeader(page, ids.compensated, 'Failed');
      await page.getByRole('main').getByText('TRANSFER_COMPENSATED').first().waitFor({ state: 'visible' });
      await page.getByRole('main').getByText(/COMPENSATED \(ACCOUNT_FROZEN\)/).first().waitFor({ state: 'visible' });
    } finally {
      await page.close();
    }
  });

  it('filters the workflow list by TransferStatus and links to the run page', async ({ skip }) => {
    if (skipReason) skip(skipReason);
    const page = await newPage();
    try {
      const completedQuery = `TransferStatus='COMPLETED' AND ToAccount='${accounts.payee}'`;
      await openList(page, completedQuery, ids.completed);
      const main = await page.getByRole('main').innerText();
      expect(main).toContain('TransferStatus');
      expect(main).not.toContain(ids.failed); // same payee, but FAILED
      expect(main).not.toContain(ids.compensated);
      await shot(page, 'list-completed');

      await openList(page, `TransferStatus='FAILED' AND ToAccount='${accounts.payee}'`, ids.failed);
      expect(await page.getByRole('main').innerText()).not.toContain(ids.completed);
      await shot(page, 'list-failed');

      // Back to the completed one and click through to its run page, as a person would.
      const link = await openList(page, completedQuery, ids.completed);
      const runPage = new RegExp(`^/namespaces/default/workflows/${ids.completed}/[0-9a-f-]{36}/history$`);
      expect(await link.getAttribute('href')).toMatch(runPage);
      await link.click();
      await page.waitForURL((url) => runPage.test(url.pathname));
      await expectHeader(page, ids.completed, 'Completed');
    } finally {
      await page.close();
    }
  });

  it('shows a completed transfer: id, status, activity summaries, search attributes, static summary', async ({ skip }) => {
    if (skipReason) skip(skipReason);
    const page = await newPage();
    const { payer, payee } = accounts;
    try {
      // The id-only URL redirects to the latest run's history.
      await page.goto(`${inject('devServerUi')}/namespaces/default/workflows/${ids.completed}`);
      await page.waitForURL(/\/history$/);
      await expectHeader(page, ids.completed, 'Completed');
      expect(await page.getByRole('main').innerText()).toContain('transferWorkflow');

      // Event History: the ledger steps are local activities; the table shows each with its type and Summary.
      await page.getByTestId('event-summary-row').filter({ hasText: 'Local Activity' }).filter({ hasText: `reserve 25.00 USD on ${payer}` }).first().waitFor({ state: 'visible' });
      expect(await scheduledSummaries(page, 4)).toEqual([
        `reserve 25.00 USD on ${payer}`,
        `reserve 25.00 USD credit on ${payee}`,
        `post 25.00 USD debit on ${payer}`,
        `post 25.00 USD credit to ${payee}`,
      ]);
      const result = page.getByRole('main').getByText('"status": "COMPLETED"');
      await result.first().waitFor({ state: 'visible' });
      await shot(page, 'completed-history');

      const attributes = searchAttributesFrom(await openTab(page, 'Search Attributes', 'indexedFields'));
      expect(attributes).toMatchObject({ TransferStatus: 'COMPLETED', FromAccount: payer, ToAccount: payee, Currency: 'USD', Amount: 2500 });
      await shot(page, 'completed-search-attributes');

      // Static summary and details are Markdown, rendered in frames.
      const metadata = await openTab(page, 'User Metadata', 'Events with Metadata');
      expect(metadata).toContain(`reserve 25.00 USD on ${payer}`);
      const frames = page.getByRole('main').locator('iframe[title="output"]');
      await frames.nth(0).contentFrame().getByText(`Transfer 25.00 USD from ${payer} to ${payee}`).waitFor({ state: 'visible' });
      await frames.nth(1).contentFrame().getByText('memo: rent').waitFor({ state: 'visible' });
      await shot(page, 'completed-user-metadata');
    } finally {
      await page.close();
    }
  });

  it('shows a compensated transfer: the refused credit and the released hold', async ({ skip }) => {
    if (skipReason) skip(skipReason);
    const page = await newPage();
    const { payer, frozen } = accounts;
    try {
      await page.goto(`${inject('devServerUi')}/namespaces/default/workflows/${ids.compensated}`);
      await page.waitForURL(/\/history$/);
      // The run closed Failed (typed TRANSFER_COMPENSATED); the full result rides in the failure's details.
      await expectHeader(page, ids.compensated, 'Failed');
      await page.getByText(`compensateDebit • release 12.00 USD held on ${payer}`).first().waitFor({ state: 'visible' });
      expect(await scheduledSummaries(page, 3)).toEqual([`reserve 12.00 USD on ${payer}`, `reserve 12.00 USD credit on ${frozen}`, `release 12.00 USD held on ${payer}`]);
      const main = page.getByRole('main');
      await main.getByText('"status": "COMPENSATED"').first().waitFor({ state: 'visible' });
      await main.getByText('"reason": "ACCOUNT_FROZEN"').first().waitFor({ state: 'visible' });
      await main.getByText(`account ${frozen} is frozen`).first().waitFor({ state: 'visible' });
      await shot(page, 'compensated-history');

      const attributes = searchAttributesFrom(await openTab(page, 'Search Attributes', 'indexedFields'));
      expect(attributes).toMatchObject({ TransferStatus: 'COMPENSATED', FromAccount: payer, ToAccount: frozen, Amount: 1200 });
    } finally {
      await page.close();
    }
  });
});
