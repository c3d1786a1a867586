// The pieces of the remote path that need no server: think tags cut anywhere across chunks, a '<'
// that is not a tag, the image type from a file's first bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from '../helpers/cli.js';
import { ThinkTagSplitter } from '../../src/remote/stream-reader.js';
import { sniffImageType } from '../../src/remote/media-url.js';
import { endpointURL } from '../../src/remote/endpoint.js';
import { statusLine } from '../../src/ui/transcript.js';

/** Feeds `chunks` and returns the text of each channel. */
function split(chunks: string[]): { thinking: string; answer: string } {
  const s = new ThinkTagSplitter('answer');
  const out = { thinking: '', answer: '' };
  for (const c of chunks) for (const seg of s.push(c)) out[seg.channel] += seg.text;
  out[s.channel] += s.flush();
  return out;
}

test('think tags are found wherever the chunks cut them', () => {
  const text = '<think>\nLet me see.\n</think>\n\nIt is blue.';
  for (let a = 1; a < text.length; a++) {
    for (const b of [a + 1, a + 3, text.length]) {
      const got = split([text.slice(0, a), text.slice(a, b), text.slice(b)]);
      assert.equal(got, { thinking: '\nLet me see.\n', answer: '\n\nIt is blue.' }, `cut at ${a}, ${b}`);
    }
  }
});

test("a '<' that starts no tag is answer text, also at the very end", () => {
  assert.equal(split(['a < b and <', 'b>']), { thinking: '', answer: 'a < b and <b>' });
  assert.equal(split(['x <th']), { thinking: '', answer: 'x <th' });
});

test('image types from the bytes of the fixture files', () => {
  assert.is(sniffImageType(readFileSync(join(fixtureDir, 'inputs', 'photo.jpg'))), 'image/jpeg');
  assert.is(sniffImageType(readFileSync(join(fixtureDir, 'inputs', 'small.png'))), 'image/png');
  assert.is(sniffImageType(Buffer.from('GIF89a')), 'image/gif');
  assert.is(sniffImageType(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')), 'image/webp');
  assert.is(sniffImageType(Buffer.from('not an image')), undefined);
});

test('the endpoint URL: a bare host gets /v1, a trailing slash goes, a path is kept', () => {
  assert.is(endpointURL('http://host:8000'), 'http://host:8000/v1');
  assert.is(endpointURL('http://host:8000/'), 'http://host:8000/v1');
  assert.is(endpointURL('https://gpu.example.org/v1/'), 'https://gpu.example.org/v1');
  assert.is(endpointURL('http://host/proxy/openai/v1'), 'http://host/proxy/openai/v1');
});

test("the chat's status line for a server that does not say its context: the used part only", () => {
  const line = statusLine({ model: 'm', device: 'remote', contextUsed: 1234, think: false }, 100);
  assert.match(line, /context 1,234( |$)/);
  assert.not.match(line, /undefined|\//);
});

test.run();
