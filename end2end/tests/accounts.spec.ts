import path from 'node:path';

import { ADMIN, artifactsDir, expect, signIn, test, waitUntilLive } from './support/fixtures';
import { TidingsServer } from './support/server';

test.describe('first run', () => {
  let fresh: TidingsServer;
  test.beforeAll(async () => {
    fresh = await TidingsServer.start({ withAdmin: false });
  });
  test.afterAll(async () => {
    await fresh.stop();
  });

  test('setup creates the administrator, who can sign out and in again', async ({ page, consoleErrors }) => {
    await page.goto(`${fresh.url}/`);
    await expect(page).toHaveURL(`${fresh.url}/setup`);
    await expect(page.getByRole('heading', { name: 'Welcome to Tidings' })).toBeVisible();
    await page.screenshot({ path: path.join(artifactsDir, 'setup.png'), fullPage: true });

    const form = page.locator('form');
    await form.getByLabel('Username').fill('grace');
    await form.getByLabel('Display name').fill('Grace Hopper');
    await form.getByLabel('Password', { exact: true }).fill('a long enough password');
    await form.getByLabel('Repeat the password').fill('a different password');
    await form.getByRole('button', { name: 'Create administrator' }).click();
    await expect(page.getByRole('alert')).toHaveText('the two passwords differ');

    await form.getByLabel('Repeat the password').fill('a long enough password');
    await form.getByRole('button', { name: 'Create administrator' }).click();
    await expect(page).toHaveURL(`${fresh.url}/`);
    await expect(page.getByRole('link', { name: 'Grace Hopper' })).toBeVisible();
    await waitUntilLive(page);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(`${fresh.url}/login`);
    await page.goto(`${fresh.url}/`);
    await expect(page).toHaveURL(`${fresh.url}/login?next=%2F`);

    await page.getByLabel('Username').fill('grace');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toHaveText('wrong username or password');
    await page.screenshot({ path: path.join(artifactsDir, 'login.png'), fullPage: true });

    await page.getByLabel('Password').fill('a long enough password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${fresh.url}/`);
    await expect(page.getByRole('link', { name: 'Grace Hopper' })).toBeVisible();
    expect(consoleErrors.filter((e) => !e.includes('status of 40'))).toEqual([]);
  });
});

test('a page that needs a session redirects to the login and comes back', async ({ page }) => {
  await page.goto('/account');
  await expect(page).toHaveURL(/\/login\?next=%2Faccount$/);
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();
});

test('the login form works without WASM too', async ({ browser, server }) => {
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: server.url });
  const page = await context.newPage();
  await page.goto('/login?next=%2Faccount');
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await context.close();
});

test('API tokens are shown once and can be revoked', async ({ page }) => {
  await signIn(page);
  await page.goto('/account');
  await waitUntilLive(page);
  await page.getByLabel('Name').fill('ci script');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.getByTestId('new-token').textContent();
  expect(secret).toMatch(/^tdg_/);
  await expect(page.locator('.token-list li')).toContainText(['ci script']);
  await page.screenshot({ path: path.join(artifactsDir, 'account.png'), fullPage: true });

  const me = await page.request.get('/api/auth/me', { headers: { Authorization: `Bearer ${secret}` } });
  expect(me.status()).toBe(200);

  await page.locator('.token-list li', { hasText: 'ci script' }).getByRole('button', { name: 'Revoke' }).click();
  await expect(page.locator('.token-list li', { hasText: 'ci script' })).toHaveCount(0);
  const after = await page.request.get('/api/auth/me', {
    headers: { Authorization: `Bearer ${secret}` },
    failOnStatusCode: false,
  });
  expect(after.status()).toBe(401);
});

test('administrators add users, who then sign in', async ({ page, browser, server }) => {
  await signIn(page);
  await page.goto('/admin/users');
  await waitUntilLive(page);
  const form = page.locator('form', { has: page.getByRole('button', { name: 'Add user' }) });
  await form.getByLabel('Username').fill('linus');
  await form.getByLabel('Display name').fill('Linus');
  await form.getByLabel('Password').fill('penguins all the way');
  await form.getByRole('button', { name: 'Add user' }).click();
  await expect(page.locator('tr[data-username="linus"]')).toContainText('user');
  await page.screenshot({ path: path.join(artifactsDir, 'users.png'), fullPage: true });

  const other = await browser.newContext({ baseURL: server.url });
  const linus = await other.newPage();
  await signIn(linus, 'linus', 'penguins all the way');
  await linus.goto('/');
  await expect(linus.getByRole('link', { name: 'Linus' })).toBeVisible();
  await expect(linus.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await other.close();
});
