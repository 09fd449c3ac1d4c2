// The web dashboard (/ui) in a real browser: Debian's chromium, headless,
// driven by playwright-core. Messages sent through the library (shmqctl)
// show up on the page as they move; a queue's attributes and a look at its
// messages are there, and looking does not receive. With
// SHMQ_DASHBOARD_SCREENSHOT=PATH it also writes the README's screenshot.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { ReceiveMessageCommand, SendMessageCommand, CreateQueueCommand } from '@aws-sdk/client-sqs';
import { Daemon } from './lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function launch() {
  assert.ok(CHROMIUM, 'chromium not found: tools/install-deps.sh installs Debian\'s chromium');
  // As root (CI), Chromium runs only without its sandbox.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60000 });
}

describe('dashboard', () => {
  let daemon;
  let browser;
  let page;
  const pageErrors = [];

  before(async () => {
    daemon = await Daemon.start();
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('shows a message sent through the library, and where it goes', async () => {
    await daemon.shmqctl('create-queue', 'jobs');
    await page.goto(`${daemon.endpoint}/ui`);
    const visible = page.locator('tr[data-queue="jobs"] td.visible');
    await visible.filter({ hasText: /^0$/ }).waitFor({ timeout: 15000 });

    await daemon.shmqctl('send', 'jobs', 'hello from the library');
    await visible.filter({ hasText: /^1$/ }).waitFor({ timeout: 15000 });
    assert.match(await page.locator('tr[data-queue="jobs"] td.memory').textContent(), /[KMG]iB/);

    // Received: in flight now, no longer visible.
    const sqs = daemon.client();
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: daemon.queueUrl('jobs'), VisibilityTimeout: 60 }));
    assert.equal(got.Messages.length, 1);
    await page.locator('tr[data-queue="jobs"] td.in-flight').filter({ hasText: /^1$/ }).waitFor({ timeout: 15000 });
    assert.equal(await visible.textContent(), '0');
    sqs.destroy();
  });

  it('shows the rates of a queue with traffic, and the chart names it', async () => {
    const sqs = daemon.client();
    await sqs.send(new CreateQueueCommand({ QueueName: 'busy' }));
    await page.locator('tr[data-queue="busy"]').waitFor({ timeout: 15000 });
    const rate = page.locator('tr[data-queue="busy"] td.sent-rate');
    let sent = 0;
    const deadline = Date.now() + 20000;
    // Sends across two refreshes of the page, until it reports a rate.
    while (Date.now() < deadline) {
      await sqs.send(new SendMessageCommand({ QueueUrl: daemon.queueUrl('busy'), MessageBody: `m${sent++}` }));
      const shown = Number(await rate.textContent());
      if (shown > 0) break;
      await sleep(50);
    }
    assert.ok(Number(await rate.textContent()) > 0, `sent/s shown: ${await rate.textContent()}`);
    await page.locator('#legend li', { hasText: 'busy' }).waitFor({ timeout: 15000 });
    sqs.destroy();
  });

  it('shows a queue\'s attributes and its messages without receiving them', async () => {
    await daemon.shmqctl('create-queue', 'peeked');
    await daemon.shmqctl('send', 'peeked', 'look, do not take');
    await page.locator('tr[data-queue="peeked"] a').click({ timeout: 15000 });
    const attributes = page.locator('#attributes');
    await attributes.locator('th', { hasText: 'VisibilityTimeout' }).waitFor({ timeout: 15000 });
    assert.equal(await attributes.locator('tr', { hasText: 'QueueArn' }).locator('td').textContent(),
      'arn:aws:sqs:us-east-1:000000000000:peeked');
    const body = page.locator('#messages td.body', { hasText: 'look, do not take' });
    await body.waitFor({ timeout: 15000 });
    await page.click('#refresh-messages');
    await body.waitFor({ timeout: 15000 });

    // Looked at twice, never received: the first receive is the first.
    const sqs = daemon.client();
    const got = await sqs.send(new ReceiveMessageCommand({
      QueueUrl: daemon.queueUrl('peeked'), MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }));
    assert.equal(got.Messages[0].Body, 'look, do not take');
    assert.equal(got.Messages[0].Attributes.ApproximateReceiveCount, '1');
    sqs.destroy();
  });

  it('ran without script errors', () => {
    assert.deepEqual(pageErrors, []);
  });

  it('makes the README screenshot when asked', { skip: !process.env.SHMQ_DASHBOARD_SCREENSHOT }, async () => {
    const sqs = daemon.client();
    for (const name of ['orders', 'orders-dlq', 'emails.fifo']) {
      await sqs.send(new CreateQueueCommand({
        QueueName: name, Attributes: name.endsWith('.fifo') ? { FifoQueue: 'true' } : {},
      }));
    }
    // A minute of uneven traffic, so that the chart has something to draw.
    for (let i = 0; i < 60; i++) {
      for (let k = 0; k < 5 + ((i * 7) % 13); k++) {
        await sqs.send(new SendMessageCommand({
          QueueUrl: daemon.queueUrl('orders'), MessageBody: JSON.stringify({ order: i * 100 + k }),
        }));
      }
      if (i % 3 === 0) {
        await sqs.send(new SendMessageCommand({
          QueueUrl: daemon.queueUrl('emails.fifo'), MessageBody: `welcome mail ${i}`,
          MessageGroupId: `user-${i % 4}`, MessageDeduplicationId: `d${i}`,
        }));
      }
      if (i > 20) {
        await sqs.send(new ReceiveMessageCommand({ QueueUrl: daemon.queueUrl('orders'), MaxNumberOfMessages: 10 }));
      }
      await sleep(1000);
    }
    await page.goto(`${daemon.endpoint}/ui#orders`);
    await page.locator('#messages td.body').first().waitFor({ timeout: 15000 });
    await page.screenshot({ path: process.env.SHMQ_DASHBOARD_SCREENSHOT, fullPage: true });
  });
});

describe('dashboard off', () => {
  it('--no-dashboard serves no /ui, and /metrics still', async () => {
    const daemon = await Daemon.start(['--no-dashboard']);
    try {
      const ui = await fetch(`${daemon.endpoint}/ui`);
      assert.notEqual(ui.status, 200);
      assert.doesNotMatch(await ui.text(), /<html/);
      const metrics = await fetch(`${daemon.endpoint}/metrics`);
      assert.equal(metrics.status, 200);
    } finally {
      await daemon.stop();
    }
  });
});
