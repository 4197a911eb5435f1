import { test as base, expect, Page } from '@playwright/test';
import path from 'node:path';

import { ADMIN, TidingsServer } from './server';

export { ADMIN };

/** Where screenshots are kept as test artefacts. */
export const artifactsDir = path.resolve(__dirname, '../../artifacts');

type Fixtures = {
  /** Console errors and page errors seen while the test ran; checked after each test. */
  consoleErrors: string[];
};

type WorkerFixtures = {
  server: TidingsServer;
};

export const test = base.extend<Fixtures, WorkerFixtures>({
  server: [
    async ({}, use) => {
      const server = await TidingsServer.start();
      await use(server);
      await server.stop();
    },
    { scope: 'worker' },
  ],
  baseURL: async ({ server }, use) => use(server.url),
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await use(errors);
  },
});

export { expect };

/** Signs the page's browser context in through the REST API (the login form has its own tests). */
export async function signIn(page: Page, username = ADMIN.username, password = ADMIN.password): Promise<void> {
  const response = await page.request.post('/api/auth/login', { data: { username, password } });
  expect(response.status()).toBe(200);
}

/** Waits until the page's WASM has hydrated and its live connection is up. */
export async function waitUntilLive(page: Page): Promise<void> {
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
}
