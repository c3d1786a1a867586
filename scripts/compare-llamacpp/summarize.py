#!/usr/bin/env python3
"""Medians and ratios of a compare-llamacpp.sh run: a Markdown table on stdout, every figure in --json.

usage: summarize.py RUN_DIR --json OUT.json [--meta key=value ...]
RUN_DIR holds runs.jsonl (one line per program run: program, weights, round, file, load before and
after, seconds, exit), quiet.jsonl (the quiet-machine check before each round) and the runs' outputs:
llama-bench's `-o json` array (avg_ts per test: n_prompt > 0 is prefill, n_gen > 0 is decode) and
ovis-engine bench's JSON lines ("figure" lines "prefill" and "decode", tokens_per_s each).
A run that failed or printed no figure is kept in the JSON with its exit status and left out of
the medians; a pair with a side missing gets no ratio.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

# (row label, llama.cpp weights, ovis weights): the pairs whose ratios the comparison is about.
PAIRS = [("bf16 vs bf16", "bf16", "bf16"), ("int8 vs Q8_0", "Q8_0", "int8"), ("int4 vs Q4_0", "Q4_0", "int4")]


def llama_figures(path: Path) -> dict:
    """{"prefill": tokens/s, "decode": tokens/s} from llama-bench's JSON (its mean over repetitions)."""
    out = {}
    for test in json.loads(path.read_text() or "[]"):
        if test.get("n_prompt", 0) > 0 and test.get("n_gen", 0) == 0:
            out["prefill"] = float(test["avg_ts"])
        elif test.get("n_gen", 0) > 0 and test.get("n_prompt", 0) == 0:
            out["decode"] = float(test["avg_ts"])
    return out


def ovis_figures(path: Path) -> dict:
    """{"prefill": tokens/s, "decode": tokens/s} from ovis-engine bench's JSON lines (medians inside)."""
    out = {}
    for line in path.read_text().splitlines():
        try:
            o = json.loads(line)
        except json.JSONDecodeError:
            continue
        if o.get("type") == "figure" and o.get("figure") in ("prefill", "decode"):
            out[o["figure"]] = float(o["tokens_per_s"])
    return out


def read_jsonl(path: Path) -> list:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def summarize(run_dir: Path) -> dict:
    runs = read_jsonl(run_dir / "runs.jsonl")
    for r in runs:
        f = Path(r["file"])
        try:
            r["figures"] = (llama_figures if r["program"] == "llama.cpp" else ovis_figures)(f) if f.exists() else {}
        except (json.JSONDecodeError, KeyError, ValueError) as e:
            r["figures"], r["parse_error"] = {}, str(e)
    medians = {}
    for program in ("llama.cpp", "ovis"):
        for weights in sorted({r["weights"] for r in runs if r["program"] == program}):
            for fig in ("prefill", "decode"):
                vals = [r["figures"][fig] for r in runs if r["program"] == program and r["weights"] == weights and fig in r["figures"]]
                if vals:
                    medians.setdefault(program, {}).setdefault(weights, {})[fig] = {"median_tokens_per_s": statistics.median(vals), "runs": vals}
    ratios = {}
    for label, lw, ow in PAIRS:
        for fig in ("prefill", "decode"):
            l = medians.get("llama.cpp", {}).get(lw, {}).get(fig)
            o = medians.get("ovis", {}).get(ow, {}).get(fig)
            if l and o:
                ratios[f"{fig} {label}"] = o["median_tokens_per_s"] / l["median_tokens_per_s"]
    return {"runs": runs, "quiet_checks": read_jsonl(run_dir / "quiet.jsonl"), "medians": medians, "ratios": ratios}


def table(s: dict, meta: dict) -> str:
    med = s["medians"]
    def cell(program, weights, fig):
        m = med.get(program, {}).get(weights, {}).get(fig)
        return f"{m['median_tokens_per_s']:.2f}" if m else "—"
    lines = ["| figure (tokens/s, median of rounds) | llama.cpp | ovis | ovis / llama.cpp |", "| --- | --- | --- | --- |"]
    for fig, name in (("prefill", "prefill"), ("decode", "decode")):
        for label, lw, ow in PAIRS:
            r = s["ratios"].get(f"{fig} {label}")
            lines.append(f"| {name}, ovis {ow} vs llama.cpp {lw} | {cell('llama.cpp', lw, fig)} | {cell('ovis', ow, fig)} | {f'{r:.2f}×' if r else '—'} |")
    lines += ["", "| round | program | weights | prefill | decode | load before → after | s | exit |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in s["runs"]:
        f = r["figures"]
        lines.append(f"| {r['round']} | {r['program']} | {r['weights']} | {f.get('prefill', float('nan')):.2f} | {f.get('decode', float('nan')):.2f} | {r['load_before']} → {r['load_after']} | {r['seconds']} | {r['exit']} |")
    lines.append("")
    for q in s["quiet_checks"]:
        lines.append(f"round {q['round']}: {q['cpu_busy_percent']} % of the CPUs busy before it ({q['verdict']}, waited {q['waited_s']} s, load {q['load']})")
    for k, v in meta.items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--json", required=True)
    p.add_argument("--meta", action="append", default=[], help="key=value recorded in the report")
    a = p.parse_args()
    meta = {}
    for kv in a.meta:
        if "=" not in kv:
            sys.exit(f"summarize: --meta takes key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        meta[k] = v
    s = summarize(Path(a.run_dir))
    s["meta"] = meta
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(s, indent=2) + "\n")
    print(table(s, meta))


if __name__ == "__main__":
    main()
