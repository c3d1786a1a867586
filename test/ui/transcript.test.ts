// The status line in every width (narrow terminals get shorter forms, never a wrapped line) and
// model text made safe to draw.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { displayText, statusLine, type Status } from '../../src/ui/transcript.js';

const status: Status = { model: 'Ovis2.5-2B', device: 'cpu', contextUsed: 1234, contextSize: 40960, tokensPerSecond: 6.71, firstTokenMs: 8600, think: true, savingTo: 'notes.json' };

test('wide: model, device, context, speed, first token, thinking, saving', () => {
  assert.is(statusLine(status, 200), 'Ovis2.5-2B · cpu · context 1,234/40,960 · 6.7 tok/s · first token 8.60 s · think on · saving to notes.json');
});

test('narrower terminals get shorter forms, each fitting', () => {
  for (const width of [100, 80, 60, 50, 40, 30, 12]) {
    const line = statusLine(status, width);
    assert.ok([...line].length <= width, `${width}: ${line}`);
  }
  assert.is(statusLine(status, 61), 'Ovis2.5-2B · ctx 1.2k/41k · 6.7 tok/s · ttft 8.6s · think on');
  assert.is(statusLine(status, 50), 'ctx 1.2k/41k · 6.7 tok/s · ttft 8.6s · think on');
});

test('control characters from the model cannot reach the terminal', () => {
  assert.is(displayText('a\tb\rc\x1b[2Jd\ne\x9b'), 'a    b\uFFFDc\uFFFD[2Jd\ne\uFFFD');
});

test.run();
