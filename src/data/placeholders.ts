// Text facts both formats share: media tags, the empty think block, the pad token.
export const IMAGE_TAG = '<image>';
export const VIDEO_TAG = '<video>';
/** What Ovis2.5 prints before a non-thinking answer (chat template with enable_thinking=false). */
export const EMPTY_THINK = '<think>\n\n</think>\n\n';
/** Qwen's pad token: never allowed in training text (upstream asserts it, the model masks it). */
export const PAD_TOKEN = '<|endoftext|>';

export function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Whether an answer carries its own think block (upstream's test: both tags present). */
export function hasThinking(text: string): boolean {
  return text.includes('<think>') && text.includes('</think>');
}

/** Number of `<image>`/`<video>` tags directly followed by a newline. */
export function tagsFollowedByNewline(text: string): number {
  return (text.match(/<(?:image|video)>\n/g) ?? []).length;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
