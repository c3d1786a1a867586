// ModelScope's cache, where many of the model's users keep it: plain directories, no symlinks.
// modelscope >= 1.14 writes <cache>/models/ORG/NAME with every '.' of NAME written as '___'
// (AIDC-AI/Ovis2___5-2B); older versions wrote <cache>/ORG/NAME.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The candidate directories of a repo id, newest layout first. */
function candidates(root: string, id: string): string[] {
  const [org, name] = id.split('/');
  const escaped = name.replaceAll('.', '___');
  return [join(root, 'models', org, escaped), join(root, 'models', org, name), join(root, org, escaped), join(root, org, name)];
}

/** The directory of `id` in the ModelScope cache, if it has one with a config.json. */
export function modelscopeDir(root: string, id: string): string | undefined {
  return candidates(root, id).find((d) => existsSync(join(d, 'config.json')));
}

export interface ModelscopeModel {
  id: string;
  dir: string;
}

/** Every model directory of the ModelScope cache (both layouts), by repo id. */
export function scanModelscope(root: string): ModelscopeModel[] {
  const found = new Map<string, string>();
  for (const base of [join(root, 'models'), root]) {
    for (const org of subdirs(base)) {
      if (base === root && org === 'models') continue;
      for (const dirName of subdirs(join(base, org))) {
        const dir = join(base, org, dirName);
        const id = `${org}/${dirName.replaceAll('___', '.')}`;
        if (!found.has(id) && existsSync(join(dir, 'config.json'))) found.set(id, dir);
      }
    }
  }
  return [...found].map(([id, dir]) => ({ id, dir })).sort((a, b) => a.id.localeCompare(b.id));
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory());
  } catch {
    return [];
  }
}
