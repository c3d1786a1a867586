#!/usr/bin/env python3
"""A bf16 GGUF of the Ovis2.5-2B decoder's shape (Qwen3-1.7B) with random weights, for llama-bench.

The dimensions are read from the engine's own preset (native/src/bench/presets.rs, "2b"), so the
GGUF cannot drift from what `ovis-engine bench --synthetic 2b` runs. The weights follow the engine's
synthetic scheme (native/src/model/synthetic.rs, llm_tensor): 1-D tensors (RMSNorm weights) uniform
in 1 ± 0.1, matrices uniform in ±0.02·√3 (standard deviation 0.02), stored as bf16 (norms as f32,
as llama.cpp's converter keeps 1-D tensors). The values themselves differ (numpy's generator, not
the engine's): the speed of either program does not depend on them. The tokenizer metadata is the
real Qwen3 one from the fixture's tokenizer.json, padded to the embedding's 151,936 rows as
llama.cpp's converter does.

usage: make-gguf.py OUT.gguf --repo REPO_ROOT [--seed 1234]
Needs the `gguf` Python package (the caller puts llama.cpp's gguf-py on PYTHONPATH) and numpy.
"""
import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

gguf = None  # imported in main(): preset_2b and the weight helpers work without it (the self-test)

ROWS_PER_CHUNK_ELEMS = 1 << 23  # generate ≤ 8 Mi values at a time (32 MiB of f32) to bound memory


def preset_2b(repo: Path) -> dict:
    """The 2b shape from presets.rs: (hidden, layers, heads, intermediate, tie) and the shared keys."""
    src = (repo / "native/src/bench/presets.rs").read_text()
    m = re.search(r'"2b"\s*=>\s*\((\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(true|false)\)', src)
    if not m:
        sys.exit("make-gguf: cannot find the \"2b\" tuple in native/src/bench/presets.rs (did its format change?)")
    def key(name: str) -> str:
        k = re.search(r'"' + name + r'":([0-9.e-]+)', src)
        if not k:
            sys.exit(f"make-gguf: cannot find {name} in native/src/bench/presets.rs")
        return k.group(1)
    return {
        "hidden": int(m[1]), "layers": int(m[2]), "heads": int(m[3]), "inter": int(m[4]), "tie": m[5] == "true",
        "kv_heads": int(key("num_key_value_heads")), "head_dim": int(key("head_dim")),
        "vocab": int(key("vocab_size")), "context": int(key("max_position_embeddings")),
        "rope_theta": float(key("rope_theta")), "eps": float(key("rms_norm_eps")),
    }


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """f32 → bf16 bit patterns (uint16), rounding to nearest even like half::bf16::from_f32."""
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def random_matrix(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """[rows, cols] bf16 bits, uniform in ±0.02·√3 (the engine's llm_tensor for matrices)."""
    half_width = np.float32(0.02 * np.sqrt(3.0))
    out = np.empty(shape, dtype=np.uint16)
    flat = out.reshape(-1)
    for start in range(0, flat.size, ROWS_PER_CHUNK_ELEMS):
        n = min(ROWS_PER_CHUNK_ELEMS, flat.size - start)
        u = rng.random(n, dtype=np.float32) * np.float32(2) - np.float32(1)
        flat[start:start + n] = to_bf16_bits(u * half_width)
    return out


def random_norm(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n] f32 of bf16-representable values 1 ± 0.1 (the engine's llm_tensor for 1-D tensors)."""
    u = rng.random(n, dtype=np.float32) * np.float32(2) - np.float32(1)
    bits = to_bf16_bits(np.float32(1) + np.float32(0.1) * u).astype(np.uint32) << 16
    return bits.view(np.float32)


def tokenizer_metadata(w: "gguf.GGUFWriter", tokenizer_json: Path, vocab: int) -> None:
    """Qwen3's byte-level BPE vocabulary, merges and special tokens, padded to `vocab` entries."""
    t = json.loads(tokenizer_json.read_text())
    tokens = [f"[PAD{i}]" for i in range(vocab)]
    types = [int(gguf.TokenType.UNUSED)] * vocab
    for text, i in t["model"]["vocab"].items():
        tokens[i], types[i] = text, int(gguf.TokenType.NORMAL)
    for a in t["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = int(gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in t["model"]["merges"]]
    ids = {a["content"]: a["id"] for a in t["added_tokens"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_pad_token_id(ids["<|endoftext|>"])
    w.add_add_bos_token(False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--repo", required=True, help="the ovis repository root")
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args()
    global gguf
    import gguf  # llama.cpp's gguf-py (the caller's PYTHONPATH) or the PyPI package
    repo = Path(a.repo)
    c = preset_2b(repo)
    print(f"make-gguf: Qwen3 shape from presets.rs 2b: {c}", file=sys.stderr)
    h, hd, inter = c["hidden"], c["head_dim"], c["inter"]
    q_rows, kv_rows = c["heads"] * hd, c["kv_heads"] * hd

    # (GGUF name, numpy shape [rows = outputs, cols = inputs]; 1-D = a norm weight) in file order.
    tensors = [("token_embd.weight", (c["vocab"], h))]
    for l in range(c["layers"]):
        b = f"blk.{l}."
        tensors += [
            (b + "attn_norm.weight", (h,)), (b + "attn_q.weight", (q_rows, h)), (b + "attn_k.weight", (kv_rows, h)),
            (b + "attn_v.weight", (kv_rows, h)), (b + "attn_q_norm.weight", (hd,)), (b + "attn_k_norm.weight", (hd,)),
            (b + "attn_output.weight", (h, q_rows)), (b + "ffn_norm.weight", (h,)),
            (b + "ffn_gate.weight", (inter, h)), (b + "ffn_up.weight", (inter, h)), (b + "ffn_down.weight", (h, inter)),
        ]
    tensors.append(("output_norm.weight", (h,)))
    if not c["tie"]:
        tensors.append(("output.weight", (c["vocab"], h)))  # tied (2B): llama.cpp reuses token_embd

    w = gguf.GGUFWriter(a.out, "qwen3")
    w.add_name("ovis-compare synthetic Qwen3-1.7B shape (random weights)")
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_BF16))
    w.add_block_count(c["layers"])
    w.add_context_length(c["context"])
    w.add_embedding_length(h)
    w.add_feed_forward_length(inter)
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["eps"])
    tokenizer_metadata(w, repo / "test/fixtures/tiny-ovis2.5/tokenizer.json", c["vocab"])
    for name, shape in tensors:
        if len(shape) == 1:
            w.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
        else:
            w.add_tensor_info(name, shape, np.dtype(np.uint16), shape[0] * shape[1] * 2, raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    # Tensors are generated and written one at a time (the largest, the embedding, is 622 MB).
    rng = np.random.default_rng(a.seed)
    for name, shape in tensors:
        w.write_tensor_data(random_norm(rng, shape[0]) if len(shape) == 1 else random_matrix(rng, shape))
    w.close()
    n = sum(int(np.prod(s)) for _, s in tensors)
    print(f"make-gguf: wrote {a.out}: {len(tensors)} tensors, {n / 1e9:.3f} G parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
