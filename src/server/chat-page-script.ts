// The chat page's script, sent inline (a plain string: it runs in the browser, not in Node). It is a
// client of this server's OpenAI-compatible API like any other: GET v1/models for the model name,
// POST v1/chat/completions with stream: true, read as server-sent events (`reasoning_content` and
// `content` deltas, `[DONE]` at the end). Stop aborts the fetch, which closes the connection, which
// makes the server cancel the generation. The conversation lives in `turns`, mirrored to
// sessionStorage so a reload keeps it. Model and user text only ever go into the DOM as text.
// (Written without backticks and dollar-brace, so it can sit in this template string unescaped.)
export const chatPageScript = String.raw`
(function () {
  'use strict';
  var STORE = { log: 'ovis.chat.log', key: 'ovis.chat.apiKey', options: 'ovis.chat.options' };
  function byId(id) { return document.getElementById(id); }
  var ui = {
    model: byId('model'), thinking: byId('thinking'), settingsButton: byId('settings-button'), settings: byId('settings'),
    newChat: byId('new-chat'), temperature: byId('temperature'), maxTokens: byId('max-tokens'),
    keyPanel: byId('key-panel'), keyReason: byId('key-reason'), keyForm: byId('key-form'), apiKey: byId('api-key'),
    log: byId('log'), empty: byId('empty'), composer: byId('composer'), attachments: byId('attachments'),
    file: byId('file'), input: byId('input'), send: byId('send'), stop: byId('stop'),
  };

  // turns: { role: 'user', text, images: [data URL] } or
  //        { role: 'assistant', text, reasoning, thinking, streaming, stopped, finish, error: { message, status } }
  var turns = loadTurns();
  var pending = [];          // data URLs of the images attached to the next message
  var controller = null;     // the AbortController of the request in flight, if any
  var modelName = null;
  var views = new WeakMap(); // turn -> its DOM nodes
  var storageWarned = false;

  function readJson(key, fallback) {
    try { var v = JSON.parse(sessionStorage.getItem(key) || 'null'); return v === null ? fallback : v; } catch (e) { return fallback; }
  }
  function loadTurns() {
    var list = readJson(STORE.log, []);
    if (!Array.isArray(list)) return [];
    list.forEach(function (t) {
      // A generation a reload interrupted: the connection closed with the old page.
      if (t.streaming) { t.streaming = false; t.stopped = true; }
    });
    return list;
  }
  function saveTurns() {
    try { sessionStorage.setItem(STORE.log, JSON.stringify(turns)); }
    catch (e) {
      // Over the browser's quota (a few MB: large images): the page keeps it, a reload would not.
      if (!storageWarned) notice('This conversation is too large to keep across a reload (' + e.name + '); it stays on this page until you leave it.');
      storageWarned = true;
    }
  }
  function saveOptions() {
    try {
      sessionStorage.setItem(STORE.options, JSON.stringify({ thinking: ui.thinking.checked, temperature: ui.temperature.value, maxTokens: ui.maxTokens.value }));
    } catch (e) { /* options are a convenience */ }
  }
  function apiKey() { try { return sessionStorage.getItem(STORE.key) || ''; } catch (e) { return ''; } }
  function headers() {
    var h = { 'content-type': 'application/json' };
    if (apiKey()) h.authorization = 'Bearer ' + apiKey();
    return h;
  }

  function node(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  // ---- rendering -----------------------------------------------------------------------------
  function nearBottom() { return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80; }
  function toBottom() { ui.log.scrollTop = ui.log.scrollHeight; }

  function viewOf(turn) {
    var root = node('div', 'msg ' + turn.role);
    root.appendChild(node('div', 'who', turn.role === 'user' ? 'You' : (modelName || 'Model')));
    var bubble = node('div', 'bubble');
    root.appendChild(bubble);
    var v = { root: root };
    if (turn.role === 'user') {
      if (turn.images && turn.images.length) {
        var box = node('div', 'images');
        turn.images.forEach(function (url) {
          var img = node('img');
          img.alt = 'attached image';
          img.src = url;
          box.appendChild(img);
        });
        bubble.appendChild(box);
      }
      bubble.appendChild(node('div', 'text', turn.text));
    } else {
      v.details = node('details', 'thinking');
      v.summary = node('summary', null, 'Thinking');
      v.thought = node('div', 'text');
      v.details.append(v.summary, v.thought);
      v.answer = node('div', 'text answer');
      v.status = node('div', 'status');
      v.error = node('div', 'error');
      v.error.setAttribute('role', 'alert');
      bubble.append(v.details, v.answer, v.status);
      root.appendChild(v.error);
    }
    views.set(turn, v);
    paint(turn);
    return root;
  }

  function paint(turn) {
    var v = views.get(turn);
    if (!v || turn.role !== 'assistant') return;
    v.root.classList.toggle('streaming', !!turn.streaming);
    v.root.setAttribute('aria-busy', String(!!turn.streaming)); // screen readers read it once, when done
    v.details.hidden = !turn.reasoning && !(turn.thinking && turn.streaming && !turn.text);
    v.summary.textContent = turn.streaming && !turn.text && turn.thinking ? 'Thinking…' : 'Thinking';
    v.thought.textContent = turn.reasoning || '';
    v.answer.textContent = turn.text;
    v.answer.hidden = !turn.text;
    v.status.textContent = turn.streaming ? (turn.text || turn.reasoning ? 'answering' : 'waiting for the model')
      : turn.stopped ? 'stopped' : turn.finish === 'length' ? 'cut off at the token limit' : '';
    v.status.hidden = !v.status.textContent;
    v.error.hidden = !turn.error;
    v.error.textContent = turn.error ? turn.error.message : '';
    if (turn.error && turn === turns[turns.length - 1]) {
      var retry = node('button', null, 'Retry');
      retry.type = 'button';
      retry.addEventListener('click', function () { retryLast(); });
      v.error.appendChild(retry);
    }
  }

  function renderAll() {
    Array.prototype.slice.call(ui.log.querySelectorAll('.msg')).forEach(function (e) { e.remove(); });
    turns.forEach(function (t) { ui.log.appendChild(viewOf(t)); });
    ui.empty.hidden = turns.length > 0;
    toBottom();
  }

  function append(turn) {
    turns.push(turn);
    ui.log.appendChild(viewOf(turn));
    ui.empty.hidden = true;
    toBottom();
  }

  function setBusy(busy) {
    ui.send.hidden = busy;
    ui.stop.hidden = !busy;
    document.body.dataset.state = busy ? 'busy' : 'idle';
    if (!busy) ui.input.focus();
  }

  // ---- attachments ---------------------------------------------------------------------------
  function renderAttachments() {
    ui.attachments.textContent = '';
    pending.forEach(function (url, i) {
      var chip = node('div', 'chip');
      var img = node('img');
      img.alt = 'image to send';
      img.src = url;
      var remove = node('button', null, '✕');
      remove.type = 'button';
      remove.title = 'remove this image';
      remove.setAttribute('aria-label', 'remove image');
      remove.addEventListener('click', function () { pending.splice(i, 1); renderAttachments(); });
      chip.append(img, remove);
      ui.attachments.appendChild(chip);
    });
  }

  function addFiles(files) {
    Array.prototype.forEach.call(files, function (f) {
      if (!/^image\//.test(f.type)) { notice('"' + f.name + '" is not an image (' + (f.type || 'unknown type') + '); attach images only.'); return; }
      var reader = new FileReader();
      reader.onload = function () { pending.push(String(reader.result)); renderAttachments(); };
      reader.onerror = function () { notice('could not read "' + f.name + '": ' + reader.error); };
      reader.readAsDataURL(f);
    });
  }

  // A message that is not part of the conversation (a file that is not an image, and such).
  function notice(message) {
    var p = node('div', 'error notice', message);
    p.setAttribute('role', 'alert');
    ui.attachments.after(p);
    setTimeout(function () { p.remove(); }, 8000);
  }

  // ---- the API -------------------------------------------------------------------------------
  function ApiError(message, status) { this.message = message; this.status = status; }

  async function errorOf(res) {
    var text = await res.text();
    var detail = text;
    try { var body = JSON.parse(text); if (body && body.error && body.error.message) detail = body.error.message; } catch (e) { /* not JSON */ }
    return new ApiError('The server answered ' + res.status + (res.statusText ? ' ' + res.statusText : '') + ': ' + (detail || '(no details)'), res.status);
  }

  function unreachable(e) {
    return new ApiError('Could not reach the server (is ovis serve still running?): ' + (e && e.message ? e.message : e), 0);
  }

  async function loadModel() {
    var res;
    try { res = await fetch('v1/models', { headers: headers() }); } catch (e) { ui.model.textContent = '(server unreachable)'; return; }
    if (res.status === 401) { askKey((await errorOf(res)).message); ui.model.textContent = '(needs an API key)'; return; }
    if (!res.ok) { ui.model.textContent = '(' + (await errorOf(res)).message + ')'; return; }
    var list = await res.json();
    modelName = list && list.data && list.data[0] ? list.data[0].id : null;
    ui.model.textContent = modelName || '(no model)';
    ui.keyPanel.hidden = true;
    Array.prototype.forEach.call(ui.log.querySelectorAll('.msg.assistant .who'), function (w) { w.textContent = modelName || 'Model'; });
  }

  function askKey(reason) {
    ui.keyReason.textContent = apiKey() ? 'The API key given was refused. ' + reason : reason;
    ui.keyPanel.hidden = false;
    ui.apiKey.focus();
  }

  function messagesForApi() {
    var out = [];
    turns.forEach(function (t) {
      if (t.role === 'user') {
        if (t.images && t.images.length) {
          var parts = t.images.map(function (url) { return { type: 'image_url', image_url: { url: url } }; });
          if (t.text) parts.push({ type: 'text', text: t.text });
          out.push({ role: 'user', content: parts });
        } else {
          out.push({ role: 'user', content: t.text });
        }
      } else if (t.text && !t.error) {
        out.push({ role: 'assistant', content: t.text });
      }
    });
    return out;
  }

  function requestBody() {
    var body = { messages: messagesForApi(), stream: true, chat_template_kwargs: { enable_thinking: ui.thinking.checked } };
    if (modelName) body.model = modelName;
    if (ui.temperature.value !== '') body.temperature = Number(ui.temperature.value);
    if (ui.maxTokens.value !== '') body.max_tokens = Number(ui.maxTokens.value);
    return body;
  }

  // Reads server-sent events: blocks separated by a blank line, "data: " lines; true at [DONE].
  async function readEvents(res, onData) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = '';
    for (;;) {
      var step = await reader.read();
      if (step.done) return false;
      buffer += decoder.decode(step.value, { stream: true }).replace(/\r\n?/g, '\n');
      var cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        var block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        var data = block.split('\n').filter(function (l) { return l.indexOf('data:') === 0; })
          .map(function (l) { return l.slice(5).replace(/^ /, ''); }).join('\n');
        if (!data) continue;
        if (data === '[DONE]') return true;
        onData(JSON.parse(data));
      }
    }
  }

  async function complete() {
    var turn = { role: 'assistant', text: '', reasoning: '', thinking: ui.thinking.checked, streaming: true };
    var body = requestBody();
    append(turn);
    saveTurns();
    controller = new AbortController();
    setBusy(true);
    try {
      var res;
      try {
        res = await fetch('v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal });
      } catch (e) {
        throw e.name === 'AbortError' ? e : unreachable(e);
      }
      if (!res.ok) throw await errorOf(res);
      var finished = await readEvents(res, function (chunk) {
        // Mid-stream the status line has gone out already: an error comes as an event.
        if (chunk.error) throw new ApiError('The generation failed: ' + chunk.error.message, 0);
        var choice = chunk.choices && chunk.choices[0];
        if (!choice) return;
        var stick = nearBottom();
        var delta = choice.delta || {};
        if (delta.reasoning_content) turn.reasoning += delta.reasoning_content;
        if (delta.content) turn.text += delta.content;
        if (choice.finish_reason) turn.finish = choice.finish_reason;
        paint(turn);
        if (stick) toBottom();
      });
      if (!finished) throw new ApiError('The answer stopped before its end: the connection closed (is ovis serve still running?)', 0);
    } catch (e) {
      // Whatever went wrong, the connection must not stay open (the server would go on generating).
      if (controller) controller.abort();
      if (e && e.name === 'AbortError') turn.stopped = true;
      else if (e instanceof ApiError) turn.error = { message: e.message, status: e.status };
      else if (e instanceof TypeError && /network|fetch/i.test(e.message)) turn.error = { message: unreachable(e).message, status: 0 };
      else turn.error = { message: 'Unexpected answer from the server: ' + (e && e.message ? e.message : e), status: 0 };
      if (turn.error && turn.error.status === 401) askKey(turn.error.message);
    } finally {
      // As the non-streamed answer: no surrounding whitespace.
      turn.text = turn.text.trim();
      turn.reasoning = turn.reasoning.trim();
      turn.streaming = false;
      controller = null;
      paint(turn);
      setBusy(false);
      saveTurns();
    }
  }

  function retryLast() {
    if (controller) return;
    var last = turns[turns.length - 1];
    if (!last || last.role !== 'assistant' || !last.error) return;
    turns.pop();
    var v = views.get(last);
    if (v) v.root.remove();
    complete();
  }

  function send() {
    if (controller) return;
    var text = ui.input.value.trim();
    if (!text && !pending.length) return;
    append({ role: 'user', text: text, images: pending });
    pending = [];
    renderAttachments();
    ui.input.value = '';
    autosize();
    complete();
  }

  function autosize() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, window.innerHeight * 0.4) + 'px';
  }

  // ---- events --------------------------------------------------------------------------------
  ui.composer.addEventListener('submit', function (e) { e.preventDefault(); send(); });
  ui.input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  ui.input.addEventListener('input', autosize);
  ui.stop.addEventListener('click', function () { if (controller) controller.abort(); });
  ui.file.addEventListener('change', function () { addFiles(ui.file.files); ui.file.value = ''; });
  document.addEventListener('paste', function (e) {
    var items = e.clipboardData ? Array.prototype.slice.call(e.clipboardData.items) : [];
    var images = items.filter(function (i) { return i.kind === 'file' && /^image\//.test(i.type); })
      .map(function (i) { return i.getAsFile(); }).filter(Boolean);
    if (!images.length) return;
    e.preventDefault();
    addFiles(images);
  });
  document.addEventListener('dragover', function (e) { e.preventDefault(); ui.composer.classList.add('dragging'); });
  document.addEventListener('dragleave', function (e) { if (!e.relatedTarget) ui.composer.classList.remove('dragging'); });
  document.addEventListener('drop', function (e) {
    e.preventDefault();
    ui.composer.classList.remove('dragging');
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });
  ui.newChat.addEventListener('click', function () {
    if (controller) controller.abort();
    turns = [];
    saveTurns();
    renderAll();
    ui.input.focus();
  });
  ui.settingsButton.addEventListener('click', function () {
    ui.settings.hidden = !ui.settings.hidden;
    ui.settingsButton.setAttribute('aria-expanded', String(!ui.settings.hidden));
  });
  [ui.thinking, ui.temperature, ui.maxTokens].forEach(function (e) { e.addEventListener('change', saveOptions); });
  ui.keyForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var key = ui.apiKey.value.trim();
    if (!key) return;
    try { sessionStorage.setItem(STORE.key, key); } catch (err) { /* kept for this page only */ }
    ui.apiKey.value = '';
    ui.keyPanel.hidden = true;
    loadModel().then(function () {
      var last = turns[turns.length - 1];
      if (last && last.error && last.error.status === 401 && ui.keyPanel.hidden) retryLast();
    });
  });

  var options = readJson(STORE.options, {});
  ui.thinking.checked = !!options.thinking;
  ui.temperature.value = options.temperature || '';
  ui.maxTokens.value = options.maxTokens || '';
  renderAll();
  setBusy(false);
  loadModel();
})();
`;
