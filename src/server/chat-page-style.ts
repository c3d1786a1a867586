// The chat page's stylesheet: system fonts only (nothing to download), light and dark from the
// system setting, one column that fits a phone (the header wraps, the composer stays at the bottom).
export const chatPageStyle = `
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1b1f24; --muted: #66707a; --card: #fff; --line: #d9dde2;
  --user: #e3ecfb; --accent: #2f6fdb; --danger: #b42318; --danger-bg: #fdecea; }
@media (prefers-color-scheme: dark) { :root { --bg: #15181c; --fg: #e6e8eb; --muted: #98a2ad; --card: #1e2227; --line: #333a42;
  --user: #23324a; --accent: #6ea1ff; --danger: #ff8a80; --danger-bg: #3a1f1d; } }
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { display: flex; flex-direction: column; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
button, input, textarea { font: inherit; color: inherit; }
button { border: 1px solid var(--line); background: var(--card); border-radius: 8px; padding: 6px 12px; cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: .5; cursor: default; }
[hidden] { display: none !important; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; justify-content: space-between;
  padding: 8px 16px; border-bottom: 1px solid var(--line); background: var(--card); }
.title { min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.model { color: var(--muted); font-size: 13px; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.toggle { display: flex; gap: 4px; align-items: center; cursor: pointer; user-select: none; }
.settings, .key-panel { display: flex; flex-wrap: wrap; gap: 8px 16px; padding: 8px 16px; border-bottom: 1px solid var(--line); background: var(--card); }
.settings input { width: 9em; margin-left: 4px; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
.key-panel { align-items: center; }
.key-panel p { margin: 0; color: var(--danger); }
.key-panel form { display: flex; gap: 8px; flex: 1; min-width: 220px; }
.key-panel input { flex: 1; min-width: 0; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
.log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 12px; }
.log > * { width: 100%; max-width: 820px; margin: 0 auto; }
.empty { color: var(--muted); text-align: center; margin-top: 20vh !important; }
.msg { display: flex; flex-direction: column; gap: 6px; }
.msg .who { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.msg .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.user .bubble { align-self: flex-end; max-width: 90%; background: var(--user); border-radius: 12px; padding: 8px 12px; }
.msg.user .who { align-self: flex-end; }
.msg.assistant .bubble { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 8px 12px; }
.images { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 6px; }
.images img { max-width: 160px; max-height: 160px; border-radius: 8px; border: 1px solid var(--line); object-fit: cover; }
details.thinking { margin-bottom: 6px; color: var(--muted); border-left: 3px solid var(--line); padding-left: 8px; }
details.thinking summary { cursor: pointer; font-size: 13px; }
details.thinking .text { font-size: 13px; }
.status { font-size: 12px; color: var(--muted); }
.msg.streaming .status::after { content: " ●"; animation: blink 1s infinite; }
@keyframes blink { 50% { opacity: .2; } }
.error { color: var(--danger); background: var(--danger-bg); border-radius: 8px; padding: 6px 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
.error button { margin-left: 8px; font-size: 13px; padding: 2px 8px; }
.composer { border-top: 1px solid var(--line); background: var(--card); padding: 8px 16px calc(8px + env(safe-area-inset-bottom)); }
.composer > * { max-width: 820px; margin: 0 auto; }
.composer .row { display: flex; gap: 8px; align-items: flex-end; }
.composer textarea { flex: 1; min-width: 0; resize: none; max-height: 40vh; padding: 8px 10px; border: 1px solid var(--line);
  border-radius: 10px; background: var(--bg); }
.composer.dragging { outline: 2px dashed var(--accent); outline-offset: -4px; }
.attach { display: flex; align-items: center; justify-content: center; width: 40px; height: 40px; flex: none; cursor: pointer;
  border: 1px solid var(--line); border-radius: 10px; font-size: 20px; }
.attach:hover { border-color: var(--accent); }
#send, #stop { height: 40px; flex: none; }
#send { background: var(--accent); border-color: var(--accent); color: #fff; }
#stop { color: var(--danger); border-color: var(--danger); }
.attachments { display: flex; flex-wrap: wrap; gap: 6px; }
.attachments:not(:empty) { margin-bottom: 8px; }
.chip { position: relative; }
.chip img { width: 56px; height: 56px; object-fit: cover; border-radius: 8px; border: 1px solid var(--line); display: block; }
.chip button { position: absolute; top: -6px; right: -6px; width: 22px; height: 22px; padding: 0; border-radius: 50%; font-size: 12px; line-height: 1; }
@media (max-width: 520px) { .bar, .settings, .key-panel, .composer { padding-left: 10px; padding-right: 10px; } .log { padding: 10px; }
  .msg.user .bubble { max-width: 100%; } }
`;
