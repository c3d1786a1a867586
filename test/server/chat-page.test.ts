// The chat page at GET /, driven in Debian's headless Chromium (playwright-core) against the real
// `ovis serve` on the fixture model: it asks about an attached image and shows, streamed, the
// answer the API gives for the same request; thinking folded; Stop cancels on the server and
// leaves the page usable; the conversation survives a reload; errors and the API key flow.
// A screenshot is kept as a test artifact (test-artifacts/chat-page.png, printed).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { root } from '../helpers/cli.js';
import { metric, startServe, until, type Served } from '../helpers/serve.js';
import { skipTest } from '../helpers/skip.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(root, 'test-artifacts');
const COMPLETIONS = '/v1/chat/completions';

let server: Served;
let browser: Browser;

/** A small PNG: a red square on a blue-to-green gradient, 64 × 48 pixels. */
async function testPng(): Promise<Buffer> {
  const w = 64;
  const h = 48;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const red = x > 20 && x < 44 && y > 12 && y < 36;
      px.set(red ? [220, 30, 30] : [0, Math.round((255 * x) / w), Math.round((255 * y) / h)], (y * w + x) * 3);
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** A fresh page (its own sessionStorage) on the server; every request it makes is recorded. */
async function openPage(url = server.url, viewport = { width: 900, height: 760 }): Promise<{ page: Page; requests: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/`);
  return { page, requests, close: async () => {
    await context.close();
    assert.equal(errors, [], 'no script errors on the page');
  } };
}

async function setOptions(page: Page, o: { temperature?: string; maxTokens?: string; thinking?: boolean }): Promise<void> {
  if (await page.locator('#settings').isHidden()) await page.click('#settings-button');
  if (o.temperature !== undefined) await page.fill('#temperature', o.temperature);
  if (o.maxTokens !== undefined) await page.fill('#max-tokens', o.maxTokens);
  if (o.thinking !== undefined) await page.setChecked('#thinking', o.thinking);
}

/** Types a message, presses Enter, and returns the JSON body the page posted. */
async function sendMessage(page: Page, text: string): Promise<any> {
  await page.fill('#input', text);
  const [request] = await Promise.all([page.waitForRequest((r) => r.url().endsWith(COMPLETIONS)), page.press('#input', 'Enter')]);
  return request.postDataJSON();
}

const idle = (page: Page) => page.waitForSelector('body[data-state="idle"]', { timeout: 60_000 });
const lastAnswer = (page: Page) => page.locator('.msg.assistant').last();

/** What the API answers, not streamed, for the body the page sent. */
async function apiAnswer(body: any, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(`${server.url}${COMPLETIONS}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ ...body, stream: false }) });
  assert.is(res.status, 200);
  return (await res.json()).choices[0].message;
}

if (!existsSync(CHROMIUM)) {
  test('chat page in Chromium', () => skipTest('chat page in Chromium', `${CHROMIUM} is missing (apt-get install chromium)`));
} else {
  test.before(async () => {
    server = await startServe();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  });
  test.after(async () => {
    await browser?.close();
    if (server) assert.is(await server.stop(), 0, server.stderr());
  });

  test('an attached image, asked about: the streamed answer is the API\'s greedy answer; screenshot kept', async () => {
    const { page, requests, close } = await openPage();
    await page.waitForSelector('#model:text("tiny-ovis2.5")');
    await setOptions(page, { temperature: '0', maxTokens: '16' });
    const png = await testPng();
    await page.setInputFiles('#file', { name: 'square.png', mimeType: 'image/png', buffer: png });
    await page.waitForSelector('#attachments img');
    // Record every text the answer shows while it streams.
    await page.evaluate(() => {
      const w = window as any;
      w.seen = [];
      new MutationObserver(() => {
        const a = document.querySelectorAll('.msg.assistant .answer');
        const t = a.length ? a[a.length - 1].textContent : '';
        if (t && w.seen[w.seen.length - 1] !== t) w.seen.push(t);
      }).observe(document.getElementById('log')!, { subtree: true, childList: true, characterData: true });
    });
    // A slow link (~1.5 kB/s down, through Chromium's own network throttling): on a fast machine the
    // whole 16-token answer can reach the page in one read, which would hide whether it renders
    // the stream piece by piece. Throttled, the ~4 kB of SSE events arrive over a few seconds.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 1500, uploadThroughput: -1 });
    const body = await sendMessage(page, 'What colour is the square in the middle?');
    assert.is(body.stream, true);
    assert.is(body.model, 'tiny-ovis2.5');
    assert.is(body.temperature, 0);
    assert.is(body.max_tokens, 16);
    assert.equal(body.chat_template_kwargs, { enable_thinking: false });
    assert.equal(body.messages, [{ role: 'user', content: [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
      { type: 'text', text: 'What colour is the square in the middle?' },
    ] }]);
    await idle(page);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const want = await apiAnswer(body);
    assert.ok(want.content.length > 0, 'the fixture answers something');
    const shown = await lastAnswer(page).locator('.answer').textContent();
    assert.is(shown, want.content);
    const seen: string[] = await page.evaluate(() => (window as any).seen);
    assert.ok(seen.length > 1, `the answer appeared in pieces as it streamed: ${JSON.stringify(seen)}`);
    assert.ok(seen.every((s) => want.content.startsWith(s.trim())), 'each streamed state is a prefix of the answer');
    assert.is(await page.locator('.msg.user img').count(), 1);
    assert.is(await page.locator('#attachments img').count(), 0, 'the attachment went with the message');
    assert.is(await lastAnswer(page).locator('details.thinking').isHidden(), true, 'no thinking without the toggle');
    assert.ok(requests.every((u) => u.startsWith(`${server.url}/`)), `the page loads nothing from elsewhere: ${requests.join(' ')}`);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'chat-page.png');
    await page.screenshot({ path: shot });
    await page.setViewportSize({ width: 390, height: 760 });
    const phone = join(ARTIFACTS, 'chat-page-phone.png');
    await page.screenshot({ path: phone });
    // On a phone-width window nothing overflows sideways.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling at 390 px');
    process.stdout.write(`chat page screenshots: ${shot} ${phone}\n`);
    await close();
  });

  test('thinking: folded in <details>, equal to the API\'s reasoning_content; a pasted image is attached', async () => {
    const { page, close } = await openPage();
    await setOptions(page, { temperature: '0', maxTokens: '12', thinking: true });
    // A clipboard image, as a browser delivers a paste.
    const png = await testPng();
    await page.focus('#input');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      document.getElementById('input')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, png.toString('base64'));
    await page.waitForSelector('#attachments img');
    const body = await sendMessage(page, 'Describe it.');
    assert.equal(body.chat_template_kwargs, { enable_thinking: true });
    assert.is(body.messages[0].content[0].image_url.url, `data:image/png;base64,${png.toString('base64')}`);
    await idle(page);
    const want = await apiAnswer(body);
    assert.ok(want.reasoning_content.length > 0);
    const details = lastAnswer(page).locator('details.thinking');
    assert.is(await details.isVisible(), true);
    assert.is(await details.evaluate((d: HTMLDetailsElement) => d.open), false, 'thinking is folded');
    assert.is(await details.locator('.text').textContent(), want.reasoning_content);
    assert.is((await lastAnswer(page).locator('.answer').textContent()) ?? '', want.content);
    await details.locator('summary').click();
    assert.is(await details.evaluate((d: HTMLDetailsElement) => d.open), true, 'a click unfolds it');
    const shot = join(ARTIFACTS, 'chat-page-thinking.png');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: shot });
    process.stdout.write(`chat page screenshot: ${shot}\n`);
    await close();
  });

  test('Stop mid-stream: the server cancels, the page stays usable; reload keeps the conversation; new chat clears it', async () => {
    const { page, close } = await openPage();
    const cancelled = await metric(server.url, 'ovis_cancelled_requests_total');
    await setOptions(page, { temperature: '0', maxTokens: '30000' });
    await sendMessage(page, 'Tell me a very long story.');
    await page.waitForSelector('.msg.assistant .answer:not(:empty)');
    await page.click('#stop');
    await idle(page);
    assert.is(await lastAnswer(page).locator('.status').textContent(), 'stopped');
    await until('the server to cancel the generation', async () => (await metric(server.url, 'ovis_cancelled_requests_total')) === cancelled + 1, 10_000);
    assert.is(await metric(server.url, 'ovis_requests_running'), 0);
    const partial = await lastAnswer(page).locator('.answer').textContent();
    assert.ok(partial && partial.length > 0);

    // The page goes on: a second question, answered; the stopped answer is part of the history.
    await setOptions(page, { maxTokens: '6' });
    const body = await sendMessage(page, 'Shorter, please.');
    assert.equal(body.messages.map((m: any) => m.role), ['user', 'assistant', 'user']);
    assert.is(body.messages[1].content, partial);
    await idle(page);
    assert.is(await lastAnswer(page).locator('.answer').textContent(), (await apiAnswer(body)).content);

    await page.reload();
    await page.waitForSelector('#model:text("tiny-ovis2.5")');
    assert.is(await page.locator('.msg').count(), 4, 'a reload keeps the conversation');
    assert.is(await page.locator('.msg.assistant .answer').first().textContent(), partial);
    await page.click('#new-chat');
    assert.is(await page.locator('.msg').count(), 0);
    await page.reload();
    assert.is(await page.locator('.msg').count(), 0, 'new chat is kept across a reload too');
    await close();
  });

  test('text is shown as text, never as HTML; a bad image gets the server\'s error, readably, and Retry', async () => {
    const { page, close } = await openPage();
    await setOptions(page, { temperature: '0', maxTokens: '4' });
    // Shift+Enter is a new line, Enter sends.
    const html = '<img src=x onerror="window.pwned=1">\n<b>bold</b>';
    await page.fill('#input', '<img src=x onerror="window.pwned=1">');
    await page.press('#input', 'Shift+Enter');
    await page.locator('#input').pressSequentially('<b>bold</b>');
    assert.is(await page.locator('.msg').count(), 0, 'nothing sent yet');
    const [sent] = await Promise.all([page.waitForRequest((r) => r.url().endsWith(COMPLETIONS)), page.press('#input', 'Enter')]);
    assert.is(sent.postDataJSON().messages[0].content, html);
    await idle(page);
    assert.is(await page.locator('.msg.user .text').last().textContent(), html);
    assert.is(await page.locator('.msg.user .text b').count(), 0);
    assert.is(await page.evaluate(() => (window as any).pwned), undefined);

    await page.setInputFiles('#file', { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('this is not a PNG file') });
    await page.waitForSelector('#attachments img');
    const body = await sendMessage(page, 'What is this?');
    await idle(page);
    const res = await fetch(`${server.url}${COMPLETIONS}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const err = (await res.json()).error;
    assert.is(res.status, 400);
    const shown = await lastAnswer(page).locator('.error').textContent();
    assert.ok(shown!.startsWith(`The server answered 400 Bad Request: ${err.message}`), shown!);
    assert.is(await lastAnswer(page).locator('.error button').textContent(), 'Retry');
    // The failed turn is not sent as history: the next question goes after the user's turns only.
    // A browser whose storage is full: the page says the conversation will not survive a reload.
    await page.evaluate(() => {
      Storage.prototype.setItem = () => { throw new DOMException('the quota has been exceeded', 'QuotaExceededError'); };
    });
    const next = await sendMessage(page, 'Never mind.');
    assert.equal(next.messages.map((m: any) => m.role), ['user', 'assistant', 'user', 'user']);
    await idle(page);
    assert.match((await page.locator('.notice').textContent())!, 'too large to keep across a reload (QuotaExceededError)');
    await close();
  });

  test('a server with --api-key: the page asks for the key on 401, keeps it, sends it as Bearer', async () => {
    const keyed = await startServe(['--api-key', 'sesame-123']);
    try {
      const { page, close } = await openPage(keyed.url);
      await page.waitForSelector('#key-panel:not([hidden])');
      assert.match((await page.textContent('#key-reason'))!, 'needs an API key');
      await page.fill('#api-key', 'wrong');
      await page.press('#api-key', 'Enter');
      await page.waitForSelector('#key-reason:text("was refused")');
      await page.fill('#api-key', 'sesame-123');
      await page.press('#api-key', 'Enter');
      await page.waitForSelector('#model:text("tiny-ovis2.5")');
      assert.is(await page.locator('#key-panel').isHidden(), true);
      await setOptions(page, { temperature: '0', maxTokens: '4' });
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.url().endsWith(COMPLETIONS)),
        page.fill('#input', 'Hello').then(() => page.press('#input', 'Enter')),
      ]);
      assert.is(request.headers().authorization, 'Bearer sesame-123');
      await idle(page);
      assert.is(await lastAnswer(page).locator('.error').isHidden(), true);
      await page.reload();
      await page.waitForSelector('#model:text("tiny-ovis2.5")');
      assert.is(await page.locator('#key-panel').isHidden(), true, 'the key is kept in sessionStorage');
      await close();
    } finally {
      await keyed.stop();
    }
  });
}

test.run();
