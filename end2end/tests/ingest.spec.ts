import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { AddressInfo } from 'node:net';
import path from 'node:path';

import { Locator, Page } from '@playwright/test';

import { emptyInbox } from './support/api';
import { artifactsDir, expect, signIn, test, waitUntilLive } from './support/fixtures';

// A small web site of our own, served by the test on 127.0.0.1: an RSS feed listing six
// articles — four about Rust's async runtimes, one about gardening (off topic) and one that
// repeats another's text under another address (refused by quality control as a duplicate).
// The article pages answer after a delay, so that a run takes long enough to be watched.

const TOPIC = {
  name: 'Rust async runtimes',
  description: 'How Rust programs run async code: runtimes, executors and their schedulers.',
  keywords: 'tokio, async, runtime, executor',
};

type FixtureArticle = { slug: string; title: string; paragraphs: string[] };

const ASYNC_SENTENCES = [
  'An async runtime such as Tokio decides when each future in a Rust program gets to run.',
  'The executor keeps a queue of tasks that are ready and polls them one after another.',
  'When a future cannot make progress it returns Pending and registers a waker with the runtime.',
  'The reactor of the runtime waits on the operating system for sockets and timers to become ready.',
  'Once an event arrives, the waker puts the task back on the queue of the executor.',
  'Tokio offers a multi-threaded runtime with one worker per core and a current-thread runtime for small programs.',
  'Spawning a task hands a future to the executor, which owns it until it completes.',
  'Blocking calls inside async code stall the worker thread and every task queued behind it.',
  'For blocking work the runtime offers a separate pool of threads, so the executor stays responsive.',
  'Channels, mutexes and semaphores in Tokio are built to cooperate with the async scheduler.',
  'Each await point is a place where the executor may switch to another task.',
  'Cooperative scheduling means a task that never awaits can starve the others on the same runtime.',
  'Tokio gives every task a budget, and a task that spends it yields back to the executor.',
  'Timers in the runtime are kept in a hierarchical wheel that makes sleeping tasks cheap.',
  'Work stealing lets an idle worker take ready tasks from the queue of a busy one.',
  'The LIFO slot lets a task that was just woken run next, which keeps message passing fast.',
  'Structured concurrency with join sets helps an async program wait for every task it spawned.',
  'Cancellation in async Rust happens when a future is dropped before it completes.',
  'Tracing the runtime with tokio-console shows which tasks are busy, idle or waiting too long.',
  'Choosing the runtime flavour early saves surprises when a Rust service grows.',
];

const GARDEN_SENTENCES = [
  'Tomatoes grow well on a sunny balcony if they get a large pot and plenty of water.',
  'Start the seedlings indoors in early spring and move them outside after the last frost.',
  'A sturdy stake or a cage keeps the plants upright once the fruit gets heavy.',
  'Pinch out the side shoots every week so that the plant puts its strength into the fruit.',
  'Water at the base in the morning and keep the leaves dry to avoid blight.',
  'Basil and marigolds planted alongside keep some pests away and smell wonderful.',
  'Feed the plants with a potash-rich fertiliser once the first flowers appear.',
  'Harvest the tomatoes when they are fully coloured and slightly soft to the touch.',
  'Cherry varieties ripen sooner and forgive a forgetful gardener more than beefsteaks do.',
  'At the end of the season, green fruit ripens indoors on a windowsill in a paper bag.',
];

/** `count` paragraphs of five sentences, starting at `offset` in `sentences`. */
function paragraphsOf(sentences: string[], offset: number, count: number): string[] {
  const paragraphs: string[] = [];
  for (let p = 0; p < count; p++) {
    const chosen = [];
    for (let s = 0; s < 5; s++) chosen.push(sentences[(offset + p * 5 + s) % sentences.length]);
    paragraphs.push(chosen.join(' '));
  }
  return paragraphs;
}

const ARTICLES: FixtureArticle[] = [
  {
    slug: 'inside-the-tokio-runtime',
    title: 'Inside the Tokio runtime: how async tasks get scheduled',
    paragraphs: paragraphsOf(ASYNC_SENTENCES, 0, 4),
  },
  {
    slug: 'writing-an-executor',
    title: 'Writing a tiny async executor to understand the Tokio runtime',
    paragraphs: paragraphsOf(ASYNC_SENTENCES, 3, 4),
  },
  {
    slug: 'growing-tomatoes',
    title: 'Growing tomatoes on a balcony',
    paragraphs: paragraphsOf(GARDEN_SENTENCES, 0, 4),
  },
  {
    slug: 'work-stealing',
    title: 'Work stealing in multi-threaded async runtimes',
    paragraphs: paragraphsOf(ASYNC_SENTENCES, 7, 4),
  },
  {
    slug: 'blocking-in-async',
    title: 'Blocking calls in async Rust and the Tokio runtime',
    paragraphs: paragraphsOf(ASYNC_SENTENCES, 11, 4),
  },
  // The first article again, word for word, at another address.
  {
    slug: 'tokio-runtime-mirror',
    title: 'Inside the Tokio runtime: how async tasks get scheduled',
    paragraphs: paragraphsOf(ASYNC_SENTENCES, 0, 4),
  },
];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function feed(base: string): string {
  const items = ARTICLES.map(
    (article, index) => `
    <item>
      <title>${escapeXml(article.title)}</title>
      <link>${base}/posts/${article.slug}</link>
      <guid>${base}/posts/${article.slug}</guid>
      <description>${escapeXml(article.paragraphs[0])}</description>
      <pubDate>${new Date(Date.UTC(2026, 0, 10 + index, 9, 0, 0)).toUTCString()}</pubDate>
    </item>`,
  ).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Fixture blog</title>
    <link>${base}/</link>
    <description>Articles served by the end-to-end test</description>${items}
  </channel>
</rss>`;
}

function articlePage(article: FixtureArticle): string {
  const body = article.paragraphs.map((paragraph) => `      <p>${escapeXml(paragraph)}</p>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>${escapeXml(article.title)}</title></head>
  <body>
    <nav><a href="/">Home</a></nav>
    <article>
      <h1>${escapeXml(article.title)}</h1>
${body}
    </article>
  </body>
</html>`;
}

/** Starts the fixture site on an ephemeral port of 127.0.0.1. */
async function startFixtureSite(): Promise<{ server: Server; base: string }> {
  let base = '';
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', base);
    if (url.pathname === '/feed.xml') {
      response.writeHead(200, { 'Content-Type': 'application/rss+xml; charset=utf-8' });
      response.end(feed(base));
      return;
    }
    const index = ARTICLES.findIndex((article) => url.pathname === `/posts/${article.slug}`);
    if (index < 0) {
      response.writeHead(404, { 'Content-Type': 'text/plain' });
      response.end('not found');
      return;
    }
    // 700–1450 ms, so that every batch takes a moment (a batch fetches its pages at once).
    setTimeout(() => {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end(articlePage(ARTICLES[index]));
    }, 700 + index * 150);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, base };
}

let site: { server: Server; base: string };

test.beforeAll(async () => {
  site = await startFixtureSite();
});

test.afterAll(async () => {
  site.server.closeAllConnections();
  await new Promise((resolve) => site.server.close(resolve));
});

test.beforeEach(async ({ page }) => {
  await signIn(page);
  await emptyInbox(page.request);
});

/** The card (a `section`) headed `heading`. */
function card(page: Page, heading: string): Locator {
  return page.locator('section.card', { has: page.getByRole('heading', { name: heading, exact: true }) });
}

/** The form of `within` whose submit button is named `button`. */
function formWith(within: Locator, button: string): Locator {
  return within.locator('form', { has: within.page().getByRole('button', { name: button, exact: true }) });
}

test('the dashboard starts ingest jobs and checks their forms in the browser first', async ({
  page,
  consoleErrors,
}) => {
  await page.goto('/');
  await waitUntilLive(page);

  const analyse = formWith(card(page, 'Analyse URLs'), 'Analyse');
  await analyse.getByLabel('Topic').fill('Rust async runtimes');
  await analyse.getByRole('button', { name: 'Analyse' }).click();
  await expect(card(page, 'Analyse URLs').getByRole('alert')).toHaveText(/^urls: enter at least one URL/);
  await expect(analyse.getByLabel('URLs')).toHaveAttribute('aria-invalid', 'true');
  await analyse.getByLabel('URLs').fill('https://example.com/one\nnot a url');
  await analyse.getByRole('button', { name: 'Analyse' }).click();
  await expect(card(page, 'Analyse URLs').getByRole('alert')).toContainText('line 2');

  const save = formWith(card(page, 'Save articles'), 'Save');
  await save.getByLabel('Articles').fill('[{"url": "https://example.com/a", "title": ');
  await save.getByRole('button', { name: 'Save' }).click();
  await expect(card(page, 'Save articles').getByRole('alert')).toHaveText(/^articles: not a JSON array of objects/);
  await expect(save.getByLabel('Articles')).toHaveAttribute('aria-invalid', 'true');
  await save.getByLabel('Articles').fill('[{"url": "https://example.com/a"}]');
  await save.getByRole('button', { name: 'Save' }).click();
  await expect(card(page, 'Save articles').getByRole('alert')).toHaveText('articles[0].title: missing');
  await page.screenshot({ path: path.join(artifactsDir, 'dashboard-forms.png'), fullPage: true });

  // A valid list is sent, and the page of the new task opens.
  await save
    .getByLabel('Articles')
    .fill(JSON.stringify([{ url: 'https://example.com/saved', title: 'An article saved by hand', text: 'Saved.' }]));
  await save.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/tasks\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId('status')).toHaveText('Completed');
  expect(consoleErrors).toEqual([]);
});

test('auto-ingest reads a feed live in batches, then its articles can be read', async ({
  page,
  browser,
  server,
  consoleErrors,
}) => {
  test.setTimeout(120_000);
  await page.goto('/ingest');
  await waitUntilLive(page);
  await expect(page.getByTestId('unread-badge')).toBeHidden();

  // The topic.
  const topics = card(page, 'Topics');
  const topicForm = formWith(topics, 'Add topic');
  await topicForm.getByLabel('Name').fill(TOPIC.name);
  await topicForm.getByLabel('Description').fill(TOPIC.description);
  await topicForm.getByLabel('Keywords').fill(TOPIC.keywords);
  await topicForm.getByRole('button', { name: 'Add topic' }).click();
  const topicItem = topics.locator('li[data-topic]', { hasText: TOPIC.name });
  await expect(topicItem).toBeVisible();
  await expect(topicItem.locator('.chip')).toHaveText(['tokio', 'async', 'runtime', 'executor']);
  await expect(topicForm.getByLabel('Name')).toHaveValue('');
  // Changed in place: the item's form opens under it.
  await topicItem.locator('summary').click();
  const editForm = formWith(topicItem, 'Save topic');
  await expect(editForm.getByLabel('Keywords')).toHaveValue('tokio, async, runtime, executor');
  await editForm.getByLabel('Description').fill('Runtimes, executors and schedulers of async Rust.');
  await editForm.getByRole('button', { name: 'Save topic' }).click();
  await expect(topicItem).toContainText('Runtimes, executors and schedulers of async Rust.');
  await expect(formWith(topicItem, 'Save topic')).toBeHidden();

  // The source: checked in the browser first, then added with the topic.
  const sources = card(page, 'Sources');
  const sourceForm = formWith(sources, 'Add source');
  await sourceForm.getByLabel('Name').fill('Fixture blog');
  await sourceForm.getByLabel('Feed URL').fill('ftp://127.0.0.1/feed.xml');
  await sourceForm.getByRole('button', { name: 'Add source' }).click();
  await expect(sources.getByRole('alert')).toHaveText(/^feed_url: must be an http/);
  await expect(sourceForm.getByLabel('Feed URL')).toHaveAttribute('aria-invalid', 'true');
  await sourceForm.getByLabel('Feed URL').fill(`${site.base}/feed.xml`);
  await expect(sourceForm.getByLabel('Topic').locator('option', { hasText: TOPIC.name })).toHaveCount(1);
  await sourceForm.getByLabel('Topic').selectOption({ label: TOPIC.name });
  await sourceForm.getByRole('button', { name: 'Add source' }).click();
  const sourceRow = sources.locator('tr[data-source="Fixture blog"]');
  await expect(sourceRow).toContainText(TOPIC.name);
  await expect(sourceRow).toContainText('On');
  await expect(sourceRow).toContainText('Never');
  await expect(sources.getByRole('alert')).toHaveCount(0);

  // Small batches, one at a time; a value out of range is refused in the browser.
  const settings = card(page, 'Settings');
  await settings.getByLabel('Batch size').fill('0');
  await settings.getByRole('button', { name: 'Save settings' }).click();
  await expect(settings.getByRole('alert')).toHaveText('batch_size: must be between 1 and 100');
  await expect(settings.getByLabel('Batch size')).toHaveAttribute('aria-invalid', 'true');
  await settings.getByLabel('Batch size').fill('2');
  await settings.getByLabel('Batches at once').fill('1');
  await settings.getByRole('button', { name: 'Save settings' }).click();
  await expect(settings.getByRole('status')).toHaveText('Settings saved.');
  await expect(settings.getByLabel('Batch size')).toHaveValue('2');

  // Run it and watch: the stage names the batches, the bar fills, the bell rings.
  const runCard = card(page, 'Auto-ingest');
  await runCard.getByRole('button', { name: 'Run now' }).click();
  const run = runCard.getByTestId('run');
  const bar = run.getByRole('progressbar');
  await expect(run.locator('.progress__stage')).toContainText(/processing batch \d\/3/);
  // A second run is refused while this one goes on.
  await runCard.getByRole('button', { name: 'Run now' }).click();
  await expect(runCard.getByRole('alert')).toContainText('already in progress');

  const seen: number[] = [];
  await expect
    .poll(
      async () => {
        const now = Number(await bar.getAttribute('value'));
        if (seen[seen.length - 1] !== now) seen.push(now);
        return now;
      },
      { timeout: 60_000, intervals: [100] },
    )
    .toBe(100);
  expect(seen.some((value) => value > 0 && value < 100), `values seen: ${seen}`).toBe(true);
  expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  await expect(run.getByTestId('status')).toHaveText('Completed');
  await expect(run.getByTestId('run-counts')).toContainText('Batch 3 of 3');
  await expect(run.getByTestId('run-counts')).toContainText('4 approved · 1 off topic · 1 low quality · 0 errors');
  await expect(page.getByTestId('unread-badge')).toHaveText('1');
  await expect(page.getByTestId('stat-filtered-relevance')).toHaveText('1');
  await expect(page.getByTestId('stat-filtered-quality')).toHaveText('1');
  await expect(page.getByTestId('runs').locator('tbody tr')).toHaveCount(1);
  await expect(page.getByTestId('runs')).toContainText('Completed');
  await expect(sourceRow).not.toContainText('Never');

  // Everyone may watch an ingest run; only its owner and administrators act on it.
  const runHref = (await run.locator('.run__name').getAttribute('href'))!;
  const created = await page.request.post('/api/admin/users/create', {
    form: { username: 'grace', display_name: 'Grace', password: 'watching the feeds', role: 'user' },
    headers: { Accept: 'application/json' },
  });
  expect(created.status(), await created.text()).toBe(200);
  const graces = await browser.newContext({ baseURL: server.url });
  const grace = await graces.newPage();
  await signIn(grace, 'grace', 'watching the feeds');
  await grace.goto(runHref);
  await waitUntilLive(grace);
  await expect(grace.getByTestId('status')).toHaveText('Completed');
  await expect(grace.getByRole('progressbar')).toHaveAttribute('value', '100');
  await expect(grace.getByTestId('timeline')).toContainText('processing batch 3/3');
  await expect(grace.getByRole('button', { name: 'Retry' })).toHaveCount(0);
  await graces.close();
  const owners = await page.context().newPage();
  await owners.goto(runHref);
  await expect(owners.getByRole('button', { name: 'Retry' })).toBeVisible();
  await owners.close();

  // A keyword group finds the articles about executors.
  const groups = card(page, 'Keyword groups');
  const groupForm = formWith(groups, 'Add group');
  await groupForm.getByLabel('Name').fill('Executors');
  await groupForm.getByLabel('Keywords').fill('executor, work stealing');
  await groupForm.getByRole('button', { name: 'Add group' }).click();
  const groupItem = groups.locator('li[data-group="Executors"]');
  await expect(groupItem).toBeVisible();
  await groupItem.getByRole('button', { name: 'Check Executors now' }).click();
  await expect(groupItem.locator('.badge--alerts')).toHaveText(/^\d+ unread alerts?$/);
  const alerts = card(page, 'Keyword alerts');
  await expect(alerts.getByTestId('alert').first()).toBeVisible();
  await page.screenshot({ path: path.join(artifactsDir, 'ingest.png'), fullPage: true });
  await alerts.getByRole('button', { name: 'Mark all read' }).click();
  await expect(alerts).toContainText('No unread alerts.');
  await expect(groupItem.locator('.badge--alerts')).toHaveCount(0);

  // The articles: approved and filtered, each with its status.
  await page.goto('/articles');
  const table = page.getByTestId('articles');
  const row = (title: string) => table.locator('tbody tr', { has: page.getByRole('link', { name: title, exact: true }) });
  const status = (title: string) => row(title).getByTestId('article-status');
  await expect(status('Growing tomatoes on a balcony')).toHaveText('Filtered: relevance');
  await expect(row('Growing tomatoes on a balcony')).toContainText('Fixture blog');
  for (const title of [
    'Writing a tiny async executor to understand the Tokio runtime',
    'Work stealing in multi-threaded async runtimes',
    'Blocking calls in async Rust and the Tokio runtime',
  ]) {
    await expect(status(title)).toHaveText('Approved');
  }
  // The copy, stored last, is listed first.
  await expect(status('Inside the Tokio runtime: how async tasks get scheduled')).toHaveText([
    'Filtered: quality',
    'Approved',
  ]);
  await expect(row('Inside the Tokio runtime: how async tasks get scheduled').first()).toContainText('duplicate');
  await expect(row('Work stealing in multi-threaded async runtimes').getByRole('meter', { name: 'Relevance' })).toBeVisible();
  await waitUntilLive(page);
  await page.screenshot({ path: path.join(artifactsDir, 'articles.png'), fullPage: true });

  // Filtering goes through the URL.
  await page.getByLabel('Status').selectOption('approved');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=approved/);
  await expect(row('Growing tomatoes on a balcony')).toHaveCount(0);
  await expect(status('Work stealing in multi-threaded async runtimes')).toHaveText('Approved');
  await expect(table.locator('[data-article-status]:not([data-article-status="approved"])')).toHaveCount(0);

  // One article, its text in paragraphs and a safe link to the original.
  await row('Work stealing in multi-threaded async runtimes').getByRole('link').click();
  await expect(page).toHaveURL(/\/articles\/\d+$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Work stealing in multi-threaded async runtimes');
  const original = page.getByRole('link', { name: 'Read the original ↗' });
  await expect(original).toHaveAttribute('href', `${site.base}/posts/work-stealing`);
  await expect(original).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(original).toHaveAttribute('target', '_blank');
  await expect(page.getByTestId('article-status')).toHaveText('Approved');
  const text = page.getByTestId('article-text');
  for (const paragraph of ARTICLES.find((article) => article.slug === 'work-stealing')!.paragraphs) {
    await expect(text.locator('p').filter({ hasText: paragraph.slice(0, 60) })).toHaveText(paragraph);
  }
  await page.screenshot({ path: path.join(artifactsDir, 'article.png'), fullPage: true });
  // The browser logs the refused second run; nothing else went wrong.
  expect(consoleErrors.filter((error) => !error.includes('409 (Conflict)'))).toEqual([]);

  // The same pages are complete before (or without) any WASM.
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: server.url });
  const plain = await context.newPage();
  await signIn(plain);
  await plain.goto('/ingest');
  await expect(card(plain, 'Sources').locator('tr[data-source="Fixture blog"]')).toBeVisible();
  await expect(plain.getByTestId('stat-filtered-relevance')).toHaveText('1');
  await plain.goto('/articles?status=filtered_relevance');
  await expect(plain.getByRole('link', { name: 'Growing tomatoes on a balcony' })).toBeVisible();
  await expect(plain.getByRole('link', { name: 'Work stealing in multi-threaded async runtimes' })).toHaveCount(0);
  await context.close();

  // On a phone, in the dark theme: the tables become one block per row.
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    colorScheme: 'dark',
    baseURL: server.url,
  });
  const small = await phone.newPage();
  await signIn(small);
  await small.goto('/articles');
  await waitUntilLive(small);
  await expect(small.getByTestId('articles')).toBeVisible();
  await small.screenshot({ path: path.join(artifactsDir, 'articles-phone-dark.png'), fullPage: true });
  await small.goto('/ingest');
  await waitUntilLive(small);
  await small.screenshot({ path: path.join(artifactsDir, 'ingest-phone-dark.png'), fullPage: true });
  await phone.close();
});
