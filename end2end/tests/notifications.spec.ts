import path from 'node:path';

import { Locator, Page } from '@playwright/test';

import { emptyInbox, markRead, notify, retryTask, startTask } from './support/api';
import { artifactsDir, expect, signIn, test, waitUntilLive } from './support/fixtures';

// Every test starts with an empty inbox (the tests of this file share one server).
test.beforeEach(async ({ page }) => {
  await signIn(page);
  await emptyInbox(page.request);
});

/** The bell's toggle, named after its count ("Notifications, 2 unread"). */
function bell(page: Page): Locator {
  return page.getByTestId('bell');
}

async function expectUnread(page: Page, count: number): Promise<void> {
  if (count === 0) {
    await expect(bell(page)).toHaveAccessibleName('Notifications, none unread');
    await expect(page.getByTestId('unread-badge')).toBeHidden();
  } else {
    await expect(bell(page)).toHaveAccessibleName(`Notifications, ${count} unread`);
    await expect(page.getByTestId('unread-badge')).toHaveText(String(count));
  }
}

/** Opens the bell's dropdown and answers it. */
async function openBell(page: Page): Promise<Locator> {
  await bell(page).click();
  await expect(bell(page)).toHaveAttribute('aria-expanded', 'true');
  const panel = page.locator('#bell-panel');
  await expect(panel).toBeVisible();
  return panel;
}

/** The notification titled `title` in `within`. */
function item(within: Locator, title: string): Locator {
  return within.getByTestId('notification').filter({ hasText: title });
}

/** Marks the loaded document, to tell later whether the page was ever reloaded. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => ((window as any).__tidingsMark = 'still the same page'));
}

async function expectSameDocument(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as any).__tidingsMark)).toBe('still the same page');
}

test('the bell rings live when a task of yours ends, and opens the task', async ({ page, consoleErrors }) => {
  await page.goto('/');
  await waitUntilLive(page);
  await markDocument(page);
  await expectUnread(page, 0);

  const done = await startTask(page.request, 'Bell ringer', { steps: 3, step_ms: 50 });
  await expectUnread(page, 1);
  const failed = await startTask(page.request, 'Bell breaker', { steps: 5, step_ms: 50, fail_at: 2 });
  await expectUnread(page, 2);
  await expectSameDocument(page);

  const panel = await openBell(page);
  const completion = item(panel, 'Bell ringer');
  await expect(completion).toContainText('task_complete');
  await expect(completion).toContainText('just now');
  await expect(completion.getByRole('link')).toHaveAttribute('href', `/tasks/${done.id}`);
  const failure = item(panel, 'Bell breaker');
  await expect(failure).toContainText('task_failed');
  await expect(failure).toContainText('step 2 failed');
  await expect(failure.getByRole('link')).toHaveAttribute('href', `/tasks/${failed.id}`);
  // Newest first.
  await expect(panel.getByTestId('notification').first()).toContainText('Bell breaker');
  await page.screenshot({ path: path.join(artifactsDir, 'bell-open.png') });

  await completion.getByRole('link').click();
  await expect(page).toHaveURL(`/tasks/${done.id}`);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Bell ringer');
  await expect(panel).toBeHidden();
  await expectUnread(page, 1);
  expect(consoleErrors).toEqual([]);
});

test('the dropdown marks one or all read, and answers the keyboard', async ({ page }) => {
  for (const title of ['First note', 'Second note', 'Third note']) {
    await notify(page.request, { title, message: `About the ${title.toLowerCase()}` });
  }
  await page.goto('/');
  await waitUntilLive(page);
  await expectUnread(page, 3);

  const panel = await openBell(page);
  await expect(panel.getByTestId('notification')).toHaveCount(3);
  await item(panel, 'Second note').getByRole('button', { name: 'Mark read' }).click();
  await expectUnread(page, 2);
  await expect(item(panel, 'Second note').getByRole('button', { name: 'Mark read' })).toHaveCount(0);
  await expect(item(panel, 'First note').getByRole('button', { name: 'Mark read' })).toBeVisible();

  await panel.getByRole('button', { name: 'Mark all read' }).click();
  await expectUnread(page, 0);
  await expect(panel.getByRole('button', { name: 'Mark read' })).toHaveCount(0);
  await expect(panel.getByRole('button', { name: 'Mark all read' })).toBeDisabled();

  // Escape closes and gives the focus back to the bell; Enter and Space open it again.
  await page.keyboard.press('Escape');
  await expect(panel).toBeHidden();
  await expect(bell(page)).toBeFocused();
  await expect(bell(page)).toHaveAttribute('aria-expanded', 'false');
  await page.keyboard.press('Enter');
  await expect(panel).toBeVisible();
  await page.keyboard.press('Space');
  await expect(panel).toBeHidden();
  await page.keyboard.press('Space');
  await expect(panel).toBeVisible();
  // A click elsewhere closes it.
  await page.getByRole('heading', { level: 1 }).click({ position: { x: 5, y: 5 } });
  await expect(panel).toBeHidden();

  await openBell(page);
  await panel.getByRole('link', { name: 'See all notifications' }).click();
  await expect(page).toHaveURL('/notifications');
  await expect(page.getByRole('heading', { level: 1, name: 'Notifications' })).toBeVisible();
});

test('notification text is shown as text, never run as HTML', async ({ page, consoleErrors }) => {
  const title = 'Hello <script>window.__xss=1</script> there';
  const message = 'Look: <img src=x onerror="window.__xss=1"> and <b>bold</b>';
  await notify(page.request, { type: 'xss_test', title, message });

  // The server-rendered inbox carries the text escaped, in the page and in its hydration data.
  const html = await (await page.request.get('/notifications')).text();
  expect(html).not.toContain('<script>window.__xss');
  expect(html).not.toContain('<img src=x');
  expect(html).toContain('&lt;script&gt;window.__xss=1&lt;/script&gt;');

  await page.goto('/notifications');
  await waitUntilLive(page);
  const listed = item(page.getByTestId('inbox'), 'Hello');
  await expect(listed.locator('.notification__title')).toHaveText(`${title} (unread)`);
  await expect(listed.locator('.notification__message')).toHaveText(message);

  const panel = await openBell(page);
  const shown = item(panel, 'Hello');
  await expect(shown.locator('.notification__title')).toContainText(title);
  await expect(shown.locator('.notification__message')).toHaveText(message);
  await expect(page.locator('.notification script, .notification img, .notification b')).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  expect(consoleErrors).toEqual([]);
});

test('two tabs of one user stay in step', async ({ page }) => {
  await notify(page.request, { title: 'Shared one' });
  await notify(page.request, { title: 'Shared two' });
  const other = await page.context().newPage();
  for (const tab of [page, other]) {
    await tab.goto('/');
    await waitUntilLive(tab);
    await expectUnread(tab, 2);
  }

  const panel = await openBell(page);
  await item(panel, 'Shared one').getByRole('button', { name: 'Mark read' }).click();
  await expectUnread(page, 1);
  await expectUnread(other, 1);

  await notify(page.request, { title: 'Shared three' });
  await expectUnread(page, 2);
  await expectUnread(other, 2);
  await expect(item(panel, 'Shared three')).toBeVisible();

  const otherPanel = await openBell(other);
  await expect(item(otherPanel, 'Shared three')).toBeVisible();
  await otherPanel.getByRole('button', { name: 'Mark all read' }).click();
  await expectUnread(other, 0);
  await expectUnread(page, 0);
  await expect(panel.getByRole('button', { name: 'Mark read' })).toHaveCount(0);

  // A change made by another client of the API reaches both tabs too.
  const five = await notify(page.request, { title: 'Shared five' });
  await expectUnread(page, 1);
  await expectUnread(other, 1);
  await markRead(page.request, five);
  await expectUnread(page, 0);
  await expectUnread(other, 0);
  await other.close();
});

test('the inbox filters, deletes, clears read ones and shows new ones live', async ({ page }) => {
  const alpha = await notify(page.request, { title: 'Alpha note', message: 'already read' });
  await notify(page.request, { title: 'Bravo note', link: 'https://example.com/bravo' });
  await notify(page.request, { title: 'Charlie note', link: '/tasks' });
  await markRead(page.request, alpha);

  await page.goto('/notifications');
  await waitUntilLive(page);
  await markDocument(page);
  const inbox = page.getByTestId('inbox');
  await expect(inbox.getByTestId('notification')).toHaveCount(3);
  await expect(page.getByTestId('unread-tab-count')).toHaveText('2');
  const external = item(inbox, 'Bravo note').getByRole('link', { name: 'Bravo note' });
  await expect(external).toHaveAttribute('href', 'https://example.com/bravo');
  await expect(external).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(item(inbox, 'Charlie note').getByRole('link')).not.toHaveAttribute('rel', /.*/);

  await page.getByRole('link', { name: 'Unread' }).click();
  await expect(page).toHaveURL('/notifications?filter=unread');
  await expect(item(inbox, 'Alpha note')).toHaveCount(0);
  await expect(inbox.getByTestId('notification')).toHaveCount(2);

  await notify(page.request, { title: 'Delta note', message: 'fresh' });
  await expect(inbox.getByTestId('notification').first()).toContainText('Delta note');
  await expect(page.getByTestId('unread-tab-count')).toHaveText('3');

  await item(inbox, 'Bravo note').getByRole('button', { name: 'Delete' }).click();
  await expect(item(inbox, 'Bravo note')).toHaveCount(0);
  await expectUnread(page, 2);

  await page.getByRole('link', { name: 'All', exact: true }).click();
  await expect(page).toHaveURL('/notifications');
  await expect(inbox.getByTestId('notification')).toHaveCount(3);
  await page.getByRole('button', { name: 'Clear read' }).click();
  await expect(item(inbox, 'Alpha note')).toHaveCount(0);
  await expect(inbox.getByTestId('notification')).toHaveCount(2);
  await page.getByRole('button', { name: 'Mark all read' }).click();
  await expectUnread(page, 0);
  await page.getByRole('button', { name: 'Clear read' }).click();
  await expect(inbox.getByTestId('notification')).toHaveCount(0);
  await expect(page.getByText('No notifications yet.')).toBeVisible();
  await expectSameDocument(page);
});

test('an administrator sends a notification to everyone, checked field by field', async ({ page }) => {
  await notify(page.request, { title: 'Earlier news', message: 'for the screenshot' });
  await page.goto('/notifications');
  await waitUntilLive(page);
  const form = page.locator('form', { has: page.getByRole('button', { name: 'Send' }) });
  await form.getByLabel('Everyone').check();
  await expect(form.getByLabel('Username')).toBeDisabled();
  await expect(form.getByLabel('Type')).toHaveValue('announcement');
  await form.getByLabel('Title').fill('Maintenance tonight');
  await form.getByLabel('Message').fill('The server restarts at 22:00.');
  await form.getByLabel('Link').fill('javascript:alert(1)');
  await form.getByRole('button', { name: 'Send' }).click();
  await expect(form.getByRole('alert')).toHaveText(/^link: must be/);
  await expect(form.getByLabel('Link')).toHaveAttribute('aria-invalid', 'true');
  await expect(form.getByLabel('Title')).toHaveAttribute('aria-invalid', 'false');

  await form.getByLabel('Type').fill('Not A Type');
  await form.getByLabel('Link').fill('/tasks');
  await form.getByRole('button', { name: 'Send' }).click();
  await expect(form.getByRole('alert')).toHaveText(/^type: must be/);
  await form.getByLabel('Type').fill('announcement');

  // The server's own refusals show the same way: an unknown user.
  await form.getByLabel('One user').check();
  await form.getByLabel('Username').fill('nobody_here');
  await form.getByRole('button', { name: 'Send' }).click();
  await expect(form.getByRole('alert')).toHaveText('username: there is no user "nobody_here"');
  await expect(form.getByLabel('Username')).toHaveAttribute('aria-invalid', 'true');

  await form.getByLabel('Everyone').check();
  await form.getByRole('button', { name: 'Send' }).click();
  await expect(form.getByRole('status')).toHaveText('Notification sent.');
  await expect(form.getByLabel('Title')).toHaveValue('');
  // The sender is one of everyone: the broadcast arrives on this page and in the bell.
  const inbox = page.getByTestId('inbox');
  await expect(inbox.getByTestId('notification').first()).toContainText('Maintenance tonight');
  await expect(inbox.getByTestId('notification').first()).toContainText('to everyone');
  await expectUnread(page, 2);
  await page.screenshot({ path: path.join(artifactsDir, 'inbox.png'), fullPage: true });
});

test('the inbox pages back through older notifications', async ({ page }) => {
  for (let n = 1; n <= 52; n++) {
    await notify(page.request, { title: `Paged note ${n}` });
  }
  await page.goto('/notifications');
  const inbox = page.getByTestId('inbox');
  await expect(inbox.getByTestId('notification')).toHaveCount(50);
  await expect(inbox.getByTestId('notification').first()).toContainText('Paged note 52');
  await page.getByRole('link', { name: 'Older →' }).click();
  await expect(page).toHaveURL(/\/notifications\?before=\d+$/);
  await expect(inbox.getByTestId('notification')).toHaveCount(2);
  await expect(inbox.getByTestId('notification').last()).toContainText('Paged note 1');
  await page.getByRole('link', { name: '← Newest' }).click();
  await expect(inbox.getByTestId('notification')).toHaveCount(50);
});

test('the inbox works before any WASM runs', async ({ browser, server, page }) => {
  await notify(page.request, { title: 'Plain one' });
  await notify(page.request, { title: 'Plain two' });
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: server.url });
  const plain = await context.newPage();
  await signIn(plain);
  await plain.goto('/notifications');
  await expect(bell(plain)).toHaveAccessibleName('Notifications, 2 unread');
  await expect(bell(plain)).toHaveAttribute('href', '/notifications');
  const inbox = plain.getByTestId('inbox');
  await item(inbox, 'Plain one').getByRole('button', { name: 'Mark read' }).click();
  await expect(plain).toHaveURL(/\/notifications\??$/);
  await expect(bell(plain)).toHaveAccessibleName('Notifications, 1 unread');
  await item(inbox, 'Plain two').getByRole('button', { name: 'Delete' }).click();
  await expect(item(inbox, 'Plain two')).toHaveCount(0);
  await plain.getByRole('button', { name: 'Clear read' }).click();
  await expect(inbox.getByTestId('notification')).toHaveCount(0);
  await context.close();
});

test('a notification about a running task shows its progress in place', async ({ page }) => {
  const task = await startTask(page.request, 'Rerun me', { steps: 40, step_ms: 100 });
  await page.goto('/');
  await waitUntilLive(page);
  await expectUnread(page, 1);
  // The retry runs again; the notification of the first run now follows it.
  await retryTask(page.request, task.id);
  const panel = await openBell(page);
  const bar = item(panel, 'Rerun me').getByRole('progressbar', { name: 'Progress of Rerun me' });
  await expect(bar).toHaveAttribute('value', /^([1-9]|[1-9]\d)$/);
  await page.screenshot({ path: path.join(artifactsDir, 'bell-progress.png') });
  // When the retry ends the notification tells so, without a bar.
  await expect(bar).toHaveCount(0, { timeout: 20_000 });
  await expect(item(panel, 'Rerun me')).toContainText('completed');
});

test('the dropdown fits a phone, in the dark theme too', async ({ browser, server, page }) => {
  await notify(page.request, { title: 'Small screens', message: 'The dropdown spans the screen.' });
  await notify(page.request, { title: 'A rather long title that has to wrap onto a second line somewhere' });
  const context = await browser.newContext({
    colorScheme: 'dark',
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    baseURL: server.url,
  });
  const phone = await context.newPage();
  await signIn(phone);
  await phone.goto('/');
  await waitUntilLive(phone);
  const panel = await openBell(phone);
  const box = await panel.boundingBox();
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(390);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await phone.screenshot({ path: path.join(artifactsDir, 'bell-phone-dark.png') });
  await context.close();
});
