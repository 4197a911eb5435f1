import path from 'node:path';

import { Page } from '@playwright/test';

import { startTask } from './support/api';
import { artifactsDir, expect, signIn, test, waitUntilLive } from './support/fixtures';

// The server of the end-to-end tests is built with the test-only job kinds (`test.steps`
// counts steps with a pause between them; `test.retryable_steps` also gets three attempts).

/** Marks the loaded document, to tell later whether the page was ever reloaded. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => ((window as any).__tidingsMark = 'still the same page'));
}

async function expectSameDocument(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as any).__tidingsMark)).toBe('still the same page');
}

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('a task started from the dashboard fills its bar live, to 100%, without a reload', async ({
  page,
  consoleErrors,
}) => {
  await page.goto('/');
  await waitUntilLive(page);
  await markDocument(page);
  const form = page.locator('form', { has: page.getByRole('button', { name: 'Start' }) });
  await form.getByLabel('Kind').selectOption('test.steps');
  await form.getByLabel('Name').fill('Count to forty');
  await form.getByLabel('Input (JSON)').fill('{"steps": 40, "step_ms": 60}');
  await form.getByRole('button', { name: 'Start' }).click();

  await expect(page).toHaveURL(/\/tasks\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Count to forty');
  const bar = page.getByRole('progressbar', { name: 'Progress of Count to forty' });
  // Somewhere between the ends: the bar moves while the task runs.
  await expect(bar).toHaveAttribute('value', /^([1-9]|[1-9]\d)$/);
  await expect(page.locator('.progress__count')).toHaveText(/^\d+ \/ 40$/);
  await page.screenshot({ path: path.join(artifactsDir, 'task-running.png'), fullPage: true });

  await expect(bar).toHaveAttribute('value', '100');
  await expect(page.getByTestId('status')).toHaveText('Completed');
  await expect(page.getByTestId('result')).toContainText('"steps": 40');
  await expect(page.getByTestId('timeline')).toContainText('processing');
  await expect(page.getByTestId('timeline')).toContainText('completed');
  await expectSameDocument(page);
  await page.screenshot({ path: path.join(artifactsDir, 'task-detail.png'), fullPage: true });
  expect(consoleErrors).toEqual([]);
});

test('the dashboard shows running and queued tasks live, then moves them to finished', async ({ page }) => {
  await page.goto('/');
  await waitUntilLive(page);
  await markDocument(page);
  const started = [];
  // Four tasks for three slots: one waits in the queue.
  for (const name of ['Alpha', 'Bravo', 'Charlie', 'Delta']) {
    started.push(await startTask(page.request, `Dashboard ${name}`, { steps: 30, step_ms: 100 }));
  }
  const running = page.getByTestId('running');
  await expect(running.locator('.task-card')).toHaveCount(3);
  await expect(running.getByRole('progressbar').first()).toBeVisible();
  await expect(page.getByTestId('queued')).toContainText('Position 1 in the queue');
  await expect(page.getByTestId('count-running')).toHaveText('3');
  await page.screenshot({ path: path.join(artifactsDir, 'dashboard.png'), fullPage: true });

  const recent = page.getByTestId('recent');
  for (const task of started) {
    await expect(recent.getByRole('link', { name: task.name })).toBeVisible({ timeout: 30_000 });
  }
  await expect(page.getByTestId('count-running')).toHaveText('0');
  await expectSameDocument(page);
});

test('cancelling a running task shows it stopping, then cancelled', async ({ page }) => {
  const task = await startTask(page.request, 'Long count', { steps: 2000, step_ms: 50 });
  await page.goto(`/tasks/${task.id}`);
  await waitUntilLive(page);
  await expect(page.getByTestId('status')).toHaveText('Running');
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(page.getByTestId('status')).toHaveText('Cancelled');
  await expect(page.getByRole('button', { name: 'Retry' })).toBeVisible();
  await expect(page.getByTestId('timeline')).toContainText('cancellation requested');
});

test('a page watching a task recovers by itself when the server is killed and restarted', async ({
  page,
  server,
}) => {
  const task = await startTask(
    page.request,
    'Survives a crash',
    { steps: 40, step_ms: 100 },
    'test.retryable_steps',
  );
  await page.goto(`/tasks/${task.id}`);
  await waitUntilLive(page);
  await markDocument(page);
  const bar = page.getByRole('progressbar', { name: 'Progress of Survives a crash' });
  await expect(bar).toHaveAttribute('value', /^[1-9]\d?$/);

  await server.kill('SIGKILL');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'reconnecting');
  await server.launch();
  await waitUntilLive(page);

  // The restarted server puts the interrupted task back in the queue; its second attempt runs
  // to the end, and the page follows without being reloaded.
  await expect(page.getByTestId('timeline')).toContainText('interrupted by server restart', { timeout: 20_000 });
  await expect(page.getByTestId('status')).toHaveText('Completed', { timeout: 30_000 });
  await expect(bar).toHaveAttribute('value', '100');
  await expectSameDocument(page);
});

test('the task list filters through the URL, follows updates, and cancels a selection', async ({ page }) => {
  await startTask(page.request, 'Filter needle', { steps: 1 });
  const first = await startTask(page.request, 'Bulk one', { steps: 2000, step_ms: 50 });
  const second = await startTask(page.request, 'Bulk two', { steps: 2000, step_ms: 50 });

  await page.goto('/tasks?q=needle');
  await expect(page.getByRole('link', { name: 'Filter needle' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Bulk one' })).toHaveCount(0);
  await waitUntilLive(page);

  await page.getByLabel('Search').fill('bulk');
  await page.getByLabel('State').selectOption('running');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=running/);
  await expect(page).toHaveURL(/q=bulk/);
  await expect(page.getByRole('link', { name: 'Bulk one' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Filter needle' })).toHaveCount(0);

  await page.getByLabel(`Select ${first.name}`).check();
  await page.getByLabel(`Select ${second.name}`).check();
  await page.getByRole('button', { name: 'Cancel 2 selected' }).click();
  for (const task of [first, second]) {
    const row = page.locator('tr', { has: page.getByRole('link', { name: task.name }) });
    await expect(row.getByTestId('status')).toHaveText('Cancelled');
  }
  await page.screenshot({ path: path.join(artifactsDir, 'tasks.png'), fullPage: true });
});

test('task pages are complete before any WASM runs', async ({ browser, server, page }) => {
  const task = await startTask(page.request, 'Rendered on the server', { steps: 3 });
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: server.url });
  const plain = await context.newPage();
  await signIn(plain);
  await expect
    .poll(async () => {
      await plain.goto(`/tasks/${task.id}`);
      return plain.getByTestId('status').textContent();
    })
    .toBe('Completed');
  await expect(plain.getByRole('progressbar', { name: 'Progress of Rendered on the server' })).toHaveAttribute(
    'value',
    '100',
  );
  await expect(plain.getByTestId('result')).toContainText('"steps": 3');

  await plain.goto('/tasks?status=completed');
  await expect(plain.getByRole('link', { name: 'Rendered on the server' })).toBeVisible();
  const missing = await plain.goto('/tasks/00000000-0000-0000-0000-000000000000');
  expect(missing?.status()).toBe(404);
  await expect(plain.getByRole('heading', { name: 'Task not found' })).toBeVisible();
  await context.close();
});
