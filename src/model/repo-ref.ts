// A model named by its hub repository, `ORG/NAME` with an optional `@REVISION` (a branch, tag or
// commit), as opposed to a directory path.
import { UsageError } from '../errors.js';

export const DEFAULT_MODEL = 'AIDC-AI/Ovis2.5-2B';

export interface RepoRef {
  /** `ORG/NAME`, as the hub spells it. */
  id: string;
  /** A branch, tag or 40-hex commit; `main` when none was given. */
  revision: string;
  /** Whether the user named the revision (for messages: `ORG/NAME@REV` vs `ORG/NAME`). */
  explicitRevision: boolean;
}

// Hub names: letters, digits, '-', '_', '.'; neither part starts with '-' or '.' nor contains '--'
// or '..'. Revisions may contain '/' (refs/pr/1) but no '..'.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const COMMIT = /^[0-9a-f]{40}$/;

/** The repository named by `text`, or undefined when `text` does not have the shape of a repo id
 * (then it can only be a path). `./ORG/NAME`, absolute paths and `~` are always paths. */
export function parseRepoRef(text: string): RepoRef | undefined {
  const at = text.indexOf('@');
  const id = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? '' : text.slice(at + 1);
  const parts = id.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p) && !p.includes('--') && !p.includes('..'))) return undefined;
  if (at >= 0 && (!revision || revision.includes('..') || !/^[A-Za-z0-9_.\/-]+$/.test(revision))) {
    throw new UsageError(`bad revision in ${JSON.stringify(text)}: after '@' give a branch, tag or commit, e.g. ${id}@main`);
  }
  return { id, revision: revision || 'main', explicitRevision: at >= 0 };
}

export function formatRef(ref: RepoRef): string {
  return ref.explicitRevision ? `${ref.id}@${ref.revision}` : ref.id;
}
