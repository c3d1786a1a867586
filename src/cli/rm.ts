// `ovis rm MODEL[@REVISION]...`: removes downloaded models from the Hugging Face cache (a whole
// repository, or one revision and the blobs only it uses), or a model's ModelScope copy.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { ModelError, UsageError } from '../errors.js';
import { cachedCommit, removeFromCache, repoFolder, scanRepo } from '../model/hf-cache.js';
import { hubEnv } from '../model/hub-env.js';
import { modelscopeDir } from '../model/modelscope-cache.js';
import { formatRef, parseRepoRef } from '../model/repo-ref.js';
import { formatBytes } from '../output/download-progress.js';
import { createLogger } from '../output/logger.js';
import { dirSize } from './list.js';

export function rmCommand(): Command {
  return new Command('rm')
    .description('remove downloaded models (a whole model, or one @REVISION of it)')
    .argument('<model...>', 'ORG/NAME[@REVISION], as `ovis list` shows them')
    .option('--json', 'print one JSON object per model removed: {model, path, freed_bytes}', false)
    .action(runRm);
}

async function runRm(models: string[], opts: { json: boolean }): Promise<void> {
  const log = createLogger();
  const hub = hubEnv();
  const refs = models.map((m) => {
    const ref = parseRepoRef(m);
    if (!ref) throw new UsageError(`ovis rm takes model names as \`ovis list\` shows them (ORG/NAME[@REVISION]), got ${JSON.stringify(m)}; to delete a directory of your own, use rm -r`);
    return ref;
  });
  // Check them all first: a typo in the third name removes nothing.
  const plans = refs.map((ref) => {
    const folder = repoFolder(hub.cacheDir, ref.id);
    if (existsSync(folder)) {
      if (!ref.explicitRevision) return { ref, kind: 'hf' as const, folder, commit: undefined };
      const commit = cachedCommit(hub.cacheDir, ref);
      if (!commit) throw new ModelError(`${formatRef(ref)} is not downloaded: ${ref.id} has only ${describeRevisions(hub.cacheDir, ref.id)} in ${hub.cacheDir}`);
      return { ref, kind: 'hf' as const, folder, commit };
    }
    const ms = ref.explicitRevision ? undefined : modelscopeDir(hub.modelscopeDir, ref.id);
    if (ms) return { ref, kind: 'ms' as const, folder: ms, commit: undefined };
    throw new ModelError(`${formatRef(ref)} is not downloaded (not in ${hub.cacheDir}${ref.explicitRevision ? '' : ` nor ${hub.modelscopeDir}`}): \`ovis list\` shows what is`);
  });
  for (const p of plans) {
    let freed: number;
    if (p.kind === 'hf') {
      freed = removeFromCache(hub.cacheDir, p.ref.id, p.commit);
      if (!existsSync(p.folder)) rmSync(join(hub.cacheDir, '.locks', `models--${p.ref.id.split('/').join('--')}`), { recursive: true, force: true });
    } else {
      freed = dirSize(p.folder);
      rmSync(p.folder, { recursive: true, force: true });
    }
    log.info(`removed ${formatRef(p.ref)}${p.commit ? ` (commit ${p.commit.slice(0, 10)})` : ''}: ${formatBytes(freed)} freed from ${p.kind === 'hf' ? hub.cacheDir : hub.modelscopeDir}`);
    if (opts.json) process.stdout.write(`${JSON.stringify({ model: formatRef(p.ref), path: p.folder, freed_bytes: freed })}\n`);
  }
}

function describeRevisions(cacheDir: string, id: string): string {
  const revs = scanRepo(cacheDir, id).revisions;
  if (!revs.length) return 'a partial download';
  return revs.map((r) => (r.refs.length ? `${r.refs.join(', ')} (${r.commit.slice(0, 10)})` : r.commit.slice(0, 10))).join('; ');
}
