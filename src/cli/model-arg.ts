// --model for the commands that run the model: resolved (src/model/resolve.ts) and, when it is a
// name that is not downloaded yet and a person is at the terminal, downloaded after asking.
import { basename } from 'node:path';
import { resolveModel, type ResolvedModel } from '../model/resolve.js';
import { formatRef } from '../model/repo-ref.js';
import type { Logger } from '../output/logger.js';
import { offerDownload } from './pull.js';

export async function modelDirFor(given: string | undefined, log: Logger): Promise<string> {
  return (await modelFor(given, log)).dir;
}

export function modelFor(given: string | undefined, log: Logger): Promise<ResolvedModel> {
  return resolveModel(given, { download: offerDownload(log) });
}

/** What to call the model on screen: its repository name, else its directory's name. */
export function displayName(m: ResolvedModel): string {
  return m.ref ? formatRef(m.ref) : basename(m.dir);
}
