import path from 'node:path';

import { artifactsDir, expect, signIn, test, waitUntilLive } from './support/fixtures';

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('the dashboard is rendered by the server, before any WASM runs', async ({ browser, server }) => {
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: server.url });
  const page = await context.newPage();
  await signIn(page);
  const response = await page.goto('/');
  expect(response?.status()).toBe(200);
  await expect(page).toHaveTitle('Dashboard · Tidings');
  await expect(page.getByRole('heading', { level: 1, name: 'Dashboard' })).toBeVisible();
  await expect(page.getByTestId('database')).toHaveText('sqlite');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connecting');
  await expect(page.getByRole('button', { name: 'Measure round trip' })).toBeDisabled();
  await context.close();
});

test('hydrates, connects its WebSocket and measures a round trip', async ({ page, consoleErrors }) => {
  await page.goto('/');
  await waitUntilLive(page);
  await expect(page.locator('.connection')).toHaveText('Live');

  // Only the hydrated WASM can send a ping over the socket and show the answer.
  const roundTrip = page.getByTestId('round-trip');
  await expect(roundTrip).toHaveText('—');
  await page.getByRole('button', { name: 'Measure round trip' }).click();
  await expect(roundTrip).toHaveText(/^\d+(\.\d)? ms$/);

  await page.screenshot({ path: path.join(artifactsDir, 'home.png'), fullPage: true });
  expect(consoleErrors).toEqual([]);
});

test('reconnects by itself after the server restarts', async ({ page, server }) => {
  await page.goto('/');
  await waitUntilLive(page);

  await server.kill('SIGKILL');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'reconnecting');
  await expect(page.locator('.connection')).toHaveText('Reconnecting…');

  await server.launch();
  await waitUntilLive(page);
  await page.getByRole('button', { name: 'Measure round trip' }).click();
  await expect(page.getByTestId('round-trip')).toHaveText(/ms$/);
});

test('unknown pages are a 404 with the app shell', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await page.getByRole('link', { name: 'Back to the dashboard' }).click();
  await expect(page).toHaveURL(/\/$/);
});

test('dark theme and a phone-sized screen', async ({ browser, server }) => {
  const context = await browser.newContext({
    colorScheme: 'dark',
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    baseURL: server.url,
  });
  const page = await context.newPage();
  await signIn(page);
  await page.goto('/');
  await waitUntilLive(page);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe('rgb(15, 17, 23)');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: path.join(artifactsDir, 'home-dark-phone.png'), fullPage: true });
  await context.close();
});
