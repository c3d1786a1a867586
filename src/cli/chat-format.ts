// Text the chat shows about attachments and statistics.
import { basename } from 'node:path';
import type { ChatSession } from '../session/chat-session.js';
import { formatInt, type Status } from '../ui/transcript.js';
import { visualTokens, type LoadedMedium } from './load-media.js';
import type { MediaArg } from './media-args.js';
import { isGreedy } from './sampling.js';

/** "image photo.jpg · 4032×3024 → 1792×1344 · 2,352 visual tokens" (videos: frames × size). */
export function describeAttachment(m: MediaArg, loaded: LoadedMedium): string {
  const name = m.bytes ? 'data URL' : m.source === '-' ? 'standard input' : basename(m.source);
  const { original: o, resized: r, grid } = loaded;
  const size = loaded.kind === 'video' ? `${grid[0]} frames of ${o.width}×${o.height} → ${r.width}×${r.height}` : `${o.width}×${o.height} → ${r.width}×${r.height}`;
  return `${loaded.kind} ${name} · ${size} · ${formatInt(visualTokens(grid))} visual tokens`;
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);

/** /stats: the last turn (cache reuse, timings, speed), the conversation, the settings. */
export function statsLines(s: ChatSession, status: Status): string[] {
  const lines: string[] = [];
  const last = s.last;
  if (last) {
    const d = last.done;
    const t = d.timings;
    lines.push(
      `last turn: ${formatInt(d.prompt_tokens)} prompt tokens prefilled, ${formatInt(d.cached_tokens)} reused from the cache (cached_tokens), ` +
        `${formatInt(d.completion_tokens)} generated (${formatInt(last.sampled.thinking)} thinking, ${formatInt(last.sampled.answer)} answer), ${d.finish_reason}`,
    );
    const speed = status.tokensPerSecond !== undefined ? `, decode ${status.tokensPerSecond.toFixed(1)} tokens/s` : '';
    lines.push(`  vision ${ms(t.vision_ms)}, prefill ${ms(t.prefill_ms)}, first token ${ms(t.first_token_ms)}${speed}, total ${ms(t.total_ms)}`);
  } else {
    lines.push('last turn: none yet');
  }
  const tot = s.totals;
  lines.push(
    `conversation: ${tot.turns} turn${tot.turns === 1 ? '' : 's'}, context ${formatInt(s.contextUsed)}${s.info.maxPositions !== undefined ? `/${formatInt(s.info.maxPositions)}` : ''} positions; ` +
      `${formatInt(tot.promptTokens)} tokens prefilled, ${formatInt(tot.cachedTokens)} reused, ${formatInt(tot.completionTokens)} generated`,
  );
  const st = s.settings;
  const sampling = (() => {
    const d = s.defaults;
    const temperature = st.temperature ?? d?.temperature;
    if (temperature !== undefined && isGreedy(temperature)) return 'greedy';
    // A server applies its own defaults to what is not set.
    const or = (v: number | undefined) => (v === undefined ? "the server's default" : String(v));
    return `temperature ${or(temperature)}, top-p ${or(st.topP ?? d?.topP)}, top-k ${or(st.topK ?? d?.topK)}`;
  })();
  const think = st.thinkBudget !== undefined ? `thinking ≤ ${st.thinkBudget} tokens` : st.think ? 'thinking on' : 'thinking off';
  lines.push(`settings: ${think}, ${sampling}, at most ${formatInt(st.maxNewTokens)} new tokens${st.system !== undefined ? ', system prompt set' : ''}`);
  return lines;
}
