// Python's str.strip / lstrip / rstrip for chat templates, which @huggingface/jinja (0.5.x) gets wrong:
// its versions ignore the `chars` argument and strip JavaScript whitespace (which differs from Python's:
// no U+001C..U+001F or U+0085, but U+FEFF). The Ovis2.5 template ends assistant turns with
// `content.split('</think>')[-1].lstrip('\n')`, so an answer starting with a space would lose it.
// rewriteStripCalls() points every `x.strip(...)`-style call in a parsed template at these functions.
import type { Template } from '@huggingface/jinja';

// Python's str.isspace() set (bidi WS/B/S or category Zs).
const PY_WHITESPACE = new Set(
  Array.from(
    '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009' +
      '\u200a\u2028\u2029\u202f\u205f\u3000',
  ),
);

type Side = 'both' | 'left' | 'right';

function pyStrip(side: Side, value: unknown, chars?: unknown): string {
  if (typeof value !== 'string') throw new Error(`strip: expected a string, got ${typeof value}`);
  if (chars !== undefined && chars !== null && typeof chars !== 'string') {
    throw new Error('strip: the characters to strip must be a string');
  }
  const set = typeof chars === 'string' ? new Set(Array.from(chars)) : PY_WHITESPACE;
  const cps = Array.from(value); // by code point, as Python does
  let start = 0;
  let end = cps.length;
  if (side !== 'right') while (start < end && set.has(cps[start])) start++;
  if (side !== 'left') while (end > start && set.has(cps[end - 1])) end--;
  return cps.slice(start, end).join('');
}

const HELPERS = {
  strip: '__ovis_py_strip',
  lstrip: '__ovis_py_lstrip',
  rstrip: '__ovis_py_rstrip',
} as const;

/** Globals the rewritten template calls; pass them to every render. */
export const PY_STRIP_GLOBALS: Record<string, (value: unknown, chars?: unknown) => string> = {
  [HELPERS.strip]: (v, c) => pyStrip('both', v, c),
  [HELPERS.lstrip]: (v, c) => pyStrip('left', v, c),
  [HELPERS.rstrip]: (v, c) => pyStrip('right', v, c),
};

interface Node {
  type?: string;
  [key: string]: unknown;
}

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null;

/**
 * Rewrites `obj.strip(args)` (and lstrip/rstrip) in the parsed template into `__ovis_py_strip(obj, args)`.
 * Works on the AST's public shape (CallExpression{callee, args}, MemberExpression{object, property,
 * computed}, Identifier{value}); the fixture tests pin the result against the reference's text.
 */
export function rewriteStripCalls(template: Template): number {
  let rewritten = 0;
  const seen = new Set<object>();
  const visit = (node: unknown): void => {
    if (!isNode(node) || seen.has(node)) return;
    seen.add(node);
    if (node.type === 'CallExpression' && isNode(node.callee) && node.callee.type === 'MemberExpression') {
      const member = node.callee;
      const prop = member.property;
      if (!member.computed && isNode(prop) && prop.type === 'Identifier' && typeof prop.value === 'string') {
        const helper = HELPERS[prop.value as keyof typeof HELPERS];
        if (helper !== undefined && Array.isArray(node.args)) {
          // Reuse the property's Identifier node as the callee: same class, new name.
          prop.value = helper;
          node.callee = prop;
          node.args = [member.object, ...node.args];
          rewritten++;
        }
      }
    }
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) value.forEach(visit);
      else visit(value);
    }
  };
  visit(template.parsed);
  return rewritten;
}
