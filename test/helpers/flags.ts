// Whole-flag matching in documentation text: `--think` must not be found inside `--think-budget`
// or `--no-think`, so a flag counts only when neither neighbour is a letter, digit or hyphen.
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** True when `text` mentions `flag` (e.g. `--think`) as a whole word. */
export function mentionsFlag(text: string, flag: string): boolean {
  return new RegExp(`(?<![a-z0-9-])${escape(flag)}(?![a-z0-9-])`).test(text);
}

/** True when a fish completion script declares the long option `name` (`-l name`). */
export function fishDeclares(text: string, name: string): boolean {
  return new RegExp(`(?<![a-z0-9-])-l ${escape(name)}(?![a-z0-9-])`).test(text);
}
