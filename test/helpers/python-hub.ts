// Python's huggingface_hub, the reference for the Hugging Face cache, driven through python3 child
// processes (JSON on stdout): tests check that what ovis writes into the cache is what Python writes
// and reads. The processes reach only the endpoint they are given: every HF_* setting of the caller
// (token, cache, offline mode) is dropped, proxies are bypassed, and HF_HOME is a temp directory of
// its own, so no real token or config is read and nothing is written outside the test's directories.
import { execFile, execFileSync } from 'node:child_process';
import { tempDir } from './temp-dirs.js';

let missing: string | undefined | null = null;

/** undefined when python3 with huggingface_hub is present; otherwise why not (for a visible skip). */
export function pythonHubMissing(): string | undefined {
  if (missing !== null) return missing;
  try {
    execFileSync('python3', ['-c', 'import huggingface_hub'], { stdio: 'pipe', timeout: 60_000 });
    missing = undefined;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    missing =
      err.code === 'ENOENT'
        ? 'python3 was not found (install: apt-get install python3 python3-pip; pip install huggingface_hub)'
        : `python3 cannot import huggingface_hub (install: pip install huggingface_hub): ${String(err.stderr ?? err.message).trim().split('\n').pop()}`;
  }
  return missing;
}

let home: string | undefined;

function pythonEnv(endpoint: string | undefined, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(HF_|HUGGING_?FACE|TRANSFORMERS_|(HTTPS?|ALL|NO)_PROXY$)/i.test(k)) continue;
    env[k] = v;
  }
  home ??= tempDir('ovis-hf-home-'); // not inside the cache dir: scan_cache_dir would warn about it
  return {
    ...env,
    HF_HOME: home,
    // Without an endpoint (offline use) a closed local port: any attempt fails at once, never the internet.
    HF_ENDPOINT: endpoint ?? 'http://127.0.0.1:9',
    NO_PROXY: '*',
    HF_HUB_DISABLE_TELEMETRY: '1',
    HF_HUB_DISABLE_XET: '1',
    HF_HUB_DISABLE_PROGRESS_BARS: '1',
    HF_HUB_DISABLE_IMPLICIT_TOKEN: '1',
    ...extra,
  };
}

/** Runs `body` (Python, with `args` the decoded JSON argument) and resolves to what it assigns to `out`. */
function runPython(body: string, args: unknown, env: NodeJS.ProcessEnv): Promise<any> {
  const script = [
    'import json, sys',
    'args = json.loads(sys.argv[1])',
    'try:',
    ...body.trim().split('\n').map((l) => `    ${l}`),
    'except Exception as e:',
    '    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))',
    '    sys.exit(1)',
    'print(json.dumps({"out": out}))',
  ].join('\n');
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script, JSON.stringify(args)], { env, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      let parsed: { out?: unknown; error?: string } | undefined;
      try {
        parsed = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        // no JSON line: the error below says what happened
      }
      if (parsed && 'out' in parsed && !err) resolve(parsed.out);
      else reject(new Error(parsed?.error ?? `python3 failed (${err?.message ?? 'no output'}): ${stderr.trim()}`));
    });
  });
}

/** snapshot_download(repo_id, revision, cache_dir, allow_patterns?) against endpoint (HF_ENDPOINT env), token optional; resolves to the snapshot path it returns. */
export function pythonSnapshotDownload(o: {
  endpoint: string;
  repo: string;
  revision?: string;
  cacheDir: string;
  allowPatterns?: string[];
  token?: string;
}): Promise<string> {
  return runPython(
    `from huggingface_hub import snapshot_download
out = snapshot_download(args["repo"], revision=args["revision"], cache_dir=args["cacheDir"], allow_patterns=args["allowPatterns"], token=args["token"] or False)`,
    { revision: null, allowPatterns: null, token: null, ...o },
    pythonEnv(o.endpoint, {}),
  );
}

/** scan_cache_dir(cacheDir) as plain JSON: {repos:[{repo_id, repo_type, size_on_disk, nb_files, revisions:[{commit_hash, refs:[…], size_on_disk, files:[{file_name, size_on_disk, blob_path}]}]}], warnings:[strings]} */
export function pythonScanCache(cacheDir: string): Promise<any> {
  return runPython(
    `from huggingface_hub import scan_cache_dir
info = scan_cache_dir(args["cacheDir"])
out = {
    "repos": [
        {
            "repo_id": r.repo_id, "repo_type": r.repo_type, "size_on_disk": r.size_on_disk, "nb_files": r.nb_files,
            "revisions": [
                {
                    "commit_hash": v.commit_hash, "refs": sorted(v.refs), "size_on_disk": v.size_on_disk,
                    "files": [
                        {"file_name": f.file_name, "size_on_disk": f.size_on_disk, "blob_path": str(f.blob_path)}
                        for f in sorted(v.files, key=lambda f: f.file_name)
                    ],
                }
                for v in sorted(r.revisions, key=lambda v: v.commit_hash)
            ],
        }
        for r in sorted(info.repos, key=lambda r: (r.repo_type, r.repo_id))
    ],
    "warnings": [str(w) for w in info.warnings],
}`,
    { cacheDir },
    pythonEnv(undefined, { HF_HUB_OFFLINE: '1' }),
  );
}

/** snapshot_download(repo, revision, cache_dir, local_files_only=True) with HF_HUB_OFFLINE=1: the path, or rejects with Python's error text. */
export function pythonCachedSnapshot(o: { repo: string; revision?: string; cacheDir: string }): Promise<string> {
  return runPython(
    `from huggingface_hub import snapshot_download
out = snapshot_download(args["repo"], revision=args["revision"], cache_dir=args["cacheDir"], local_files_only=True)`,
    { revision: null, ...o },
    pythonEnv(undefined, { HF_HUB_OFFLINE: '1' }),
  );
}
