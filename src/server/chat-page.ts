// GET /: the chat page (issue 11, item 4). One self-contained HTML document: inline CSS and script,
// no external assets (a Content-Security-Policy forbids them), so it works offline and on any
// machine that can reach the server. It talks only to this server's own /v1 API, as any client.
import { chatPageScript } from './chat-page-script.js';
import { chatPageStyle } from './chat-page-style.js';

// The page's markup: static skeleton only. Everything the model or the user writes is inserted by
// the script as text nodes (textContent), never parsed as HTML.
const BODY = `
<header class="bar">
  <div class="title"><strong>ovis</strong> <span id="model" class="model" title="the model this server runs">…</span></div>
  <div class="actions">
    <label class="toggle" title="let the model think first (chat_template_kwargs.enable_thinking)"><input type="checkbox" id="thinking"> Thinking</label>
    <button type="button" id="settings-button" aria-expanded="false" aria-controls="settings">Settings</button>
    <button type="button" id="new-chat">New chat</button>
  </div>
</header>
<section id="settings" class="settings" hidden>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" placeholder="model default"></label>
  <label>Max tokens <input id="max-tokens" type="number" min="1" step="1" placeholder="server default"></label>
</section>
<section id="key-panel" class="key-panel" hidden>
  <p id="key-reason">This server needs an API key.</p>
  <form id="key-form">
    <input id="api-key" type="password" autocomplete="off" placeholder="API key" aria-label="API key">
    <button type="submit">Use key</button>
  </form>
</section>
<main id="log" class="log" aria-live="polite">
  <p id="empty" class="empty">Ask something, or attach an image (button, paste or drop) and ask about it.</p>
</main>
<form id="composer" class="composer">
  <div id="attachments" class="attachments"></div>
  <div class="row">
    <label class="attach" title="attach an image">
      <input id="file" type="file" accept="image/*" multiple hidden>
      <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M20 11l-8 8a5 5 0 0 1-7-7l9-9a3.5 3.5 0 0 1 5 5l-9 9a2 2 0 0 1-3-3l8-8"/></svg><span class="sr">Attach image</span>
    </label>
    <textarea id="input" rows="1" placeholder="Message (Enter sends)" title="Enter sends, Shift+Enter starts a new line" aria-label="Message"></textarea>
    <button type="submit" id="send">Send</button>
    <button type="button" id="stop" hidden>Stop</button>
  </div>
</form>`;

export function chatPageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'">
<link rel="icon" href="data:,">
<title>ovis chat</title>
<style>${chatPageStyle}</style>
</head>
<body>${BODY}
<script>${chatPageScript}</script>
</body>
</html>
`;
}
