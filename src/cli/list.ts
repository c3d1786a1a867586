// `ovis list`: the Ovis models already downloaded, in the Hugging Face cache (each snapshot: its
// refs, commit, size, whether ovis can run it) and in the ModelScope cache.
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { scanCache } from '../model/hf-cache.js';
import { hubEnv } from '../model/hub-env.js';
import { scanModelscope } from '../model/modelscope-cache.js';
import { resolveModel } from '../model/resolve.js';
import { checkModelDir } from '../model/validate.js';
import { formatBytes } from '../output/download-progress.js';

export interface ListedModel {
  model: string;
  /** Branches and tags pointing at this snapshot (Hugging Face cache). */
  refs: string[];
  commit?: string;
  source: 'hf-cache' | 'modelscope';
  path: string;
  size_bytes: number;
  /** ready: ovis runs it; incomplete: `ovis pull` finishes it; unsupported / invalid: see problem. */
  status: 'ready' | 'incomplete' | 'unsupported' | 'invalid';
  problem?: string;
  /** The model `ovis ask` uses without --model. */
  default: boolean;
}

export function listCommand(): Command {
  return new Command('list')
    .alias('ls')
    .description('list the downloaded Ovis models (Hugging Face and ModelScope caches)')
    .option('--json', 'print one JSON object: {cache, modelscope_cache, models: [...]}', false)
    .action(runList);
}

/** An Ovis model by its name or its config's model_type (Ovis2, Ovis-U1 included: they are listed
 * as unsupported rather than hidden). */
function isOvis(id: string, dir: string): boolean {
  if (/ovis/i.test(id)) return true;
  try {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model_type?: unknown };
    return typeof config.model_type === 'string' && config.model_type.startsWith('ovis');
  } catch {
    return false;
  }
}

export async function listModels(env: NodeJS.ProcessEnv = process.env): Promise<ListedModel[]> {
  const hub = hubEnv(env);
  // The directory `ovis ask` would use without --model (none when that model is not downloaded).
  const defaultDir = await resolveModel(undefined, { env }).then((r) => r.dir, () => undefined);
  const out: ListedModel[] = [];
  for (const repo of scanCache(hub.cacheDir)) {
    for (const rev of repo.revisions) {
      if (!isOvis(repo.id, rev.dir)) continue;
      const check = await checkModelDir(rev.dir);
      out.push({
        model: repo.id, refs: rev.refs, commit: rev.commit, source: 'hf-cache', path: rev.dir, size_bytes: rev.size,
        status: check.ok ? 'ready' : check.kind, problem: check.ok ? undefined : check.problems[0],
        default: rev.dir === defaultDir,
      });
    }
    // A download interrupted before its first file was complete has blobs but no snapshot yet.
    if (repo.revisions.length === 0 && repo.partialBytes > 0 && /ovis/i.test(repo.id)) {
      out.push({ model: repo.id, refs: [], source: 'hf-cache', path: repo.folder, size_bytes: repo.size, status: 'incomplete', problem: 'a download was interrupted before any file was complete', default: false });
    }
  }
  for (const m of scanModelscope(hub.modelscopeDir)) {
    if (!isOvis(m.id, m.dir)) continue;
    const check = await checkModelDir(m.dir);
    out.push({
      model: m.id, refs: [], source: 'modelscope', path: m.dir, size_bytes: dirSize(m.dir),
      status: check.ok ? 'ready' : check.kind, problem: check.ok ? undefined : check.problems[0],
      default: m.dir === defaultDir,
    });
  }
  return out;
}

async function runList(opts: { json: boolean }): Promise<void> {
  const hub = hubEnv();
  const models = await listModels();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ cache: hub.cacheDir, modelscope_cache: hub.modelscopeDir, models })}\n`);
    return;
  }
  if (!models.length) {
    process.stderr.write(`no Ovis models downloaded (looked in ${hub.cacheDir} and ${hub.modelscopeDir}): ovis pull AIDC-AI/Ovis2.5-2B fetches one\n`);
    return;
  }
  const rows = models.map((m) => [
    `${m.model}${m.default ? ' (default)' : ''}`,
    m.refs.length ? m.refs.join(',') : '-',
    m.commit ? m.commit.slice(0, 10) : m.source === 'modelscope' ? 'modelscope' : '-',
    formatBytes(m.size_bytes),
    m.status === 'incomplete' ? `incomplete: ovis pull ${m.model}` : m.status === 'ready' ? 'ready' : `${m.status}: ${m.problem ?? ''}`,
    m.path,
  ]);
  const head = ['MODEL', 'REFS', 'COMMIT', 'SIZE', 'STATUS', 'PATH'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  process.stdout.write([line(head), ...rows.map(line)].join('\n') + '\n');
}

/** Bytes of the files under a plain directory (a ModelScope copy: no links to deduplicate). */
export function dirSize(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = statOrUndefined(p);
      if (st?.isDirectory()) walk(p);
      else if (st) total += st.size;
    }
  };
  walk(dir);
  return total;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
