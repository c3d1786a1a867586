// `ovis pull [MODEL]`: downloads a model into the Hugging Face cache (src/model/pull.ts) with a
// progress line on stderr; Ctrl-C keeps what arrived and the same command resumes it. Also the
// download that ask/chat offer on a terminal when the named model is not there yet.
import { Command } from 'commander';
import { InterruptedError, ModelError, UsageError } from '../errors.js';
import { createDownloadProgress, formatBytes, formatDuration } from '../output/download-progress.js';
import { createLogger, type Logger } from '../output/logger.js';
import { hubEnv, type HubEnv } from '../model/hub-env.js';
import { planPull, runPull, type PullPlan } from '../model/pull.js';
import { modelName, type ResolveOptions } from '../model/resolve.js';
import { formatRef, parseRepoRef, type RepoRef } from '../model/repo-ref.js';
import { validateModelDir } from '../model/validate.js';
import { canAsk, confirm } from './confirm.js';

interface PullOptions { all: boolean; json: boolean }

export function pullCommand(): Command {
  return new Command('pull')
    .description('download a model into the Hugging Face cache (resumable; HF_ENDPOINT, HF_TOKEN honoured)')
    .argument('[model]', 'ORG/NAME[@REVISION] (default: $OVIS_MODEL, else AIDC-AI/Ovis2.5-2B)')
    .option('--all', 'every file of the repository, not only what ovis reads', false)
    .option('--json', 'print one JSON object describing the download on stdout', false)
    .addHelpText('after', '\nFiles go where huggingface_hub puts them ($HF_HUB_CACHE, else $HF_HOME/hub, else\n~/.cache/huggingface/hub), so transformers and vLLM find them too. Run it again after an\ninterruption to resume; files already there are not fetched again.')
    .action(runPullCommand);
}

async function runPullCommand(model: string | undefined, opts: PullOptions): Promise<void> {
  const log = createLogger();
  const name = modelName(model);
  const ref = parseRepoRef(name);
  if (!ref) throw new UsageError(`ovis pull takes a model name such as AIDC-AI/Ovis2.5-2B (ORG/NAME, optionally @REVISION), got ${JSON.stringify(name)}`);
  const plan = await planPull(hubEnv(), ref, { all: opts.all });
  const dir = await pullWithProgress(plan, log);
  await validateModelDir(dir);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ model: ref.id, revision: ref.revision, commit: plan.commit, path: dir, files: plan.files.length, size_bytes: plan.totalBytes, downloaded_bytes: plan.missingBytes })}\n`);
  }
}

/** Runs a planned pull with the progress line; Ctrl-C (or SIGTERM) stops it and says how to resume. */
export async function pullWithProgress(plan: PullPlan, log: Logger): Promise<string> {
  const name = formatRef(plan.ref);
  if (plan.missingBytes === 0) {
    const dir = await runPull(plan, { signal: new AbortController().signal });
    log.info(`${name} is already downloaded (commit ${plan.commit.slice(0, 10)}, ${formatBytes(plan.totalBytes)}): ${dir}`);
    return dir;
  }
  const started = performance.now();
  const have = plan.totalBytes - plan.missingBytes;
  log.info(`pulling ${name} (commit ${plan.commit.slice(0, 10)}) from ${plan.env.endpoint}: ${plan.files.length} files, ${formatBytes(plan.totalBytes)}${have > 0 ? `, ${formatBytes(have)} already here` : ''}`);
  const controller = new AbortController();
  let signalName: 'SIGINT' | 'SIGTERM' | undefined;
  const onInt = () => { signalName ??= 'SIGINT'; controller.abort(); };
  const onTerm = () => { signalName ??= 'SIGTERM'; controller.abort(); };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const progress = createDownloadProgress(`pulling ${name}`);
  let last = have;
  let fetched = 0;
  try {
    const dir = await runPull(plan, {
      signal: controller.signal,
      onProgress: (p) => { last = p.done; fetched = p.done - p.resumed; progress.update(p); },
      onWait: (pid) => { progress.stop(); log.info(`another ovis process (pid ${pid}) is pulling ${plan.ref.id}: waiting for it to finish`); },
    });
    progress.stop();
    const seconds = (performance.now() - started) / 1000;
    log.info(`${name} is ready: ${formatBytes(fetched)} downloaded in ${formatDuration(seconds)}${seconds > 0.5 && fetched > 0 ? ` (${formatBytes(fetched / seconds)}/s)` : ''}: ${dir}`);
    return dir;
  } catch (e) {
    progress.stop();
    if (e instanceof InterruptedError || controller.signal.aborted) {
      throw new InterruptedError(`download stopped with ${formatBytes(last)} of ${formatBytes(plan.totalBytes)} kept: run \`ovis pull ${name}\` to resume it`, false, signalName);
    }
    throw e;
  } finally {
    progress.stop();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** The download ask and chat offer on a terminal (undefined elsewhere: they then fail with the
 * `ovis pull` command to run): asks with the size, then pulls with the progress line. */
export function offerDownload(log: Logger): ResolveOptions['download'] {
  if (!canAsk()) return undefined;
  return async (ref: RepoRef, hub: HubEnv, incomplete: boolean) => {
    const plan = await planPull(hub, ref);
    const where = `from ${hub.endpoint} into ${hub.cacheDir}`;
    const question = incomplete
      ? `${formatRef(ref)} is only partly downloaded: fetch the remaining ${formatBytes(plan.missingBytes)} ${where}?`
      : `${formatRef(ref)} is not downloaded yet: download it (${formatBytes(plan.missingBytes)}) ${where}?`;
    if (!(await confirm(question))) {
      throw new ModelError(`not downloaded: run \`ovis pull ${formatRef(ref)}\` when you want it, or pass --model with a local model directory`);
    }
    return pullWithProgress(plan, log);
  };
}
