// Shortcuts through the server's own endpoints, for setting up what a test then looks at.

import { APIRequestContext } from '@playwright/test';

import { expect } from './fixtures';

export type StartedTask = { id: string; name: string };

/** Starts a task through the same server function the dashboard's form calls. */
export async function startTask(
  request: APIRequestContext,
  name: string,
  input: object,
  kind = 'test.steps',
): Promise<StartedTask> {
  const response = await request.post('/api/tasks/start', {
    form: { kind, name, input: JSON.stringify(input) },
    headers: { Accept: 'application/json' },
  });
  expect(response.status(), await response.text()).toBe(200);
  const task = await response.json();
  return { id: task.id, name: task.name };
}

/** Starts a new run of a finished task (the retry button's server function). */
export async function retryTask(request: APIRequestContext, id: string): Promise<StartedTask> {
  const response = await request.post('/api/tasks/retry', {
    form: { id },
    headers: { Accept: 'application/json' },
  });
  expect(response.status(), await response.text()).toBe(200);
  const task = await response.json();
  return { id: task.id, name: task.name };
}

export type NewNotification = {
  type?: string;
  title: string;
  message?: string;
  link?: string;
  username?: string;
  broadcast?: boolean;
};

/** Sends a notification through the REST API (to the caller unless it names a recipient). */
export async function notify(request: APIRequestContext, notification: NewNotification): Promise<number> {
  const response = await request.post('/api/notifications/create', {
    data: { type: 'note', message: '', ...notification },
  });
  expect(response.status()).toBe(200);
  return (await response.json()).notification_id;
}

export async function markRead(request: APIRequestContext, id: number): Promise<void> {
  const response = await request.post(`/api/notifications/${id}/mark-read`);
  expect(response.status()).toBe(200);
}

/** Empties the caller's inbox: everything read, then every read notification deleted. */
export async function emptyInbox(request: APIRequestContext): Promise<void> {
  expect((await request.post('/api/notifications/mark-all-read')).status()).toBe(200);
  expect((await request.delete('/api/notifications/read')).status()).toBe(200);
}
