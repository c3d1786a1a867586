//! A strict reader for `pytorch_model*.bin` state dicts as `torch.save` writes them (the zip format of
//! torch ≥ 1.6): an uncompressed zip holding `<archive>/data.pkl` (a pickle of the state dict) and one
//! record `<archive>/data/<key>` per storage. Only the subset torch.save uses for a dict of tensors is
//! read — dicts/OrderedDicts, strings, ints, tuples, storages by persistent id, and
//! `torch._utils._rebuild_tensor_v2` — so a pickle can never run code here; anything else is refused
//! with the opcode or global named. Tensors are not copied: each is a byte range of the mapped file.
use crate::error::{model_err, Result};
use crate::model::weights::DType;
use std::collections::HashMap;
use std::path::Path;

/// One tensor of the state dict: its dtype, shape and absolute byte range in the file.
pub struct BinTensor {
    pub name: String,
    pub dtype: DType,
    pub dtype_name: String,
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

/// A stored (uncompressed) zip entry: name and absolute byte range of its data.
struct Entry {
    name: String,
    start: usize,
    len: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
}
fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap()) as usize)
}
fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap()) as usize)
}

/// The zip's entries from its central directory (zip64 included: torch writes it for files over 4 GiB).
fn zip_entries(b: &[u8], shown: &str) -> Result<Vec<Entry>> {
    let bad = |what: &str| model_err(format!("{shown} is not a torch.save zip archive: {what}"));
    // End of central directory: 22 bytes + a comment of at most 64 KiB, searched from the end.
    let lo = b.len().saturating_sub(22 + 65535);
    let eocd = (lo..b.len().saturating_sub(21)).rev().find(|&i| b[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]).ok_or_else(|| bad("no end-of-central-directory record (truncated file?)"))?;
    let (mut count, mut cd) = (u16_at(b, eocd + 10).unwrap(), u32_at(b, eocd + 16).unwrap());
    if count == 0xffff || cd == 0xffff_ffff {
        // The zip64 locator sits just before the EOCD and points at the zip64 EOCD record.
        let loc = eocd.checked_sub(20).filter(|&l| b[l..l + 4] == [0x50, 0x4b, 0x06, 0x07]).ok_or_else(|| bad("zip64 sizes without a zip64 locator"))?;
        let z = u64_at(b, loc + 8).filter(|&z| b.get(z..z + 4) == Some(&[0x50, 0x4b, 0x06, 0x06][..])).ok_or_else(|| bad("bad zip64 end-of-central-directory record"))?;
        count = u64_at(b, z + 32).ok_or_else(|| bad("truncated zip64 record"))?;
        cd = u64_at(b, z + 48).ok_or_else(|| bad("truncated zip64 record"))?;
    }
    let mut out = Vec::with_capacity(count);
    let mut p = cd;
    for _ in 0..count {
        if b.get(p..p + 4) != Some(&[0x50, 0x4b, 0x01, 0x02][..]) {
            return Err(bad(&format!("central directory entry at byte {p} is damaged")));
        }
        let (method, mut size, n, e, c, mut local) =
            (u16_at(b, p + 10).unwrap(), u32_at(b, p + 20).unwrap(), u16_at(b, p + 28).unwrap(), u16_at(b, p + 30).unwrap(), u16_at(b, p + 32).unwrap(), u32_at(b, p + 42).unwrap());
        let name = String::from_utf8_lossy(b.get(p + 46..p + 46 + n).ok_or_else(|| bad("truncated central directory"))?).into_owned();
        // Zip64 extra field (id 1): the 8-byte values of those 32-bit fields that are 0xffffffff, in the
        // order uncompressed size, compressed size, local header offset.
        let mut x = p + 46 + n;
        let x_end = x + e;
        while x + 4 <= x_end {
            let (id, len) = (u16_at(b, x).unwrap(), u16_at(b, x + 2).unwrap());
            if id == 1 {
                let mut q = x + 4;
                let usize_ = u32_at(b, p + 24).unwrap();
                if usize_ == 0xffff_ffff {
                    size = u64_at(b, q).ok_or_else(|| bad("truncated zip64 field"))?;
                    q += 8;
                }
                if u32_at(b, p + 20).unwrap() == 0xffff_ffff {
                    size = u64_at(b, q).ok_or_else(|| bad("truncated zip64 field"))?;
                    q += 8;
                }
                if local == 0xffff_ffff {
                    local = u64_at(b, q).ok_or_else(|| bad("truncated zip64 field"))?;
                }
            }
            x += 4 + len;
        }
        if method != 0 {
            return Err(model_err(format!("{shown}: zip entry {name} is compressed (method {method}); torch.save stores entries uncompressed, so this file was repacked: save it again with torch.save or as safetensors")));
        }
        if b.get(local..local + 4) != Some(&[0x50, 0x4b, 0x03, 0x04][..]) {
            return Err(bad(&format!("local header of {name} is damaged")));
        }
        let start = local + 30 + u16_at(b, local + 26).unwrap() + u16_at(b, local + 28).unwrap();
        if start + size > b.len() {
            return Err(model_err(format!("{shown} is truncated: entry {name} ends at byte {} but the file has {} bytes", start + size, b.len())));
        }
        out.push(Entry { name, start, len: size });
        p += 46 + n + e + c;
    }
    Ok(out)
}

/// The values of the pickle subset.
#[derive(Clone, Debug)]
enum V {
    None,
    Bool,
    Int(i64),
    Float,
    Str(String),
    Tuple(Vec<V>),
    List(Vec<V>),
    Dict(Vec<(V, V)>),
    Global(String),
    Storage { dtype: DType, dtype_name: String, key: String, numel: usize },
    Tensor { storage: Box<V>, offset: usize, shape: Vec<usize>, stride: Vec<usize> },
    Mark,
}

fn storage_dtype(global: &str) -> Option<(DType, &'static str)> {
    match global {
        "torch.BFloat16Storage" => Some((DType::BF16, "BF16")),
        "torch.HalfStorage" => Some((DType::F16, "F16")),
        "torch.FloatStorage" => Some((DType::F32, "F32")),
        // Integer buffers (e.g. position_ids) that some checkpoints keep: read, never used as weights.
        "torch.LongStorage" => Some((DType::I64, "I64")),
        _ => None,
    }
}

fn usize_list(v: &V, what: &str) -> std::result::Result<Vec<usize>, String> {
    match v {
        V::Tuple(items) => items.iter().map(|i| if let V::Int(n) = i { usize::try_from(*n).map_err(|_| format!("{what} holds {n}")) } else { Err(format!("{what} holds {i:?}")) }).collect(),
        other => Err(format!("{what} is {other:?}, not a tuple")),
    }
}

/// Runs the pickle of a state dict; returns the top-level value.
fn unpickle(p: &[u8]) -> std::result::Result<V, String> {
    let mut stack: Vec<V> = Vec::new();
    let mut memo: HashMap<usize, V> = HashMap::new();
    let mut i = 0;
    let take = |i: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let s = p.get(*i..*i + n).ok_or("the pickle ends inside an opcode")?;
        *i += n;
        Ok(s)
    };
    let pop = |stack: &mut Vec<V>| stack.pop().ok_or_else(|| "stack underflow".to_string());
    let pop_mark = |stack: &mut Vec<V>| -> std::result::Result<Vec<V>, String> {
        let m = stack.iter().rposition(|v| matches!(v, V::Mark)).ok_or("no MARK on the stack")?;
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items)
    };
    loop {
        let op = *p.get(i).ok_or("the pickle has no STOP opcode")?;
        let at = i;
        i += 1;
        match op {
            0x80 => {
                take(&mut i, 1)?;
            } // PROTO
            0x95 => {
                take(&mut i, 8)?;
            } // FRAME
            b'.' => return pop(&mut stack),
            b'}' => stack.push(V::Dict(Vec::new())),
            b']' => stack.push(V::List(Vec::new())),
            b')' => stack.push(V::Tuple(Vec::new())),
            b'(' => stack.push(V::Mark),
            b'N' => stack.push(V::None),
            0x88 => stack.push(V::Bool),
            0x89 => stack.push(V::Bool),
            b'K' => stack.push(V::Int(take(&mut i, 1)?[0] as i64)),
            b'M' => stack.push(V::Int(u16::from_le_bytes(take(&mut i, 2)?.try_into().unwrap()) as i64)),
            b'J' => stack.push(V::Int(i32::from_le_bytes(take(&mut i, 4)?.try_into().unwrap()) as i64)),
            0x8a => {
                let n = take(&mut i, 1)?[0] as usize;
                let bytes = take(&mut i, n)?;
                if n > 8 {
                    return Err(format!("LONG1 of {n} bytes"));
                }
                let mut v: i64 = 0;
                for (k, &byte) in bytes.iter().enumerate() {
                    v |= (byte as i64) << (8 * k);
                }
                if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(V::Int(v));
            }
            b'G' => {
                take(&mut i, 8)?;
                stack.push(V::Float)
            },
            b'X' | 0x8c => {
                let n = if op == b'X' { u32::from_le_bytes(take(&mut i, 4)?.try_into().unwrap()) as usize } else { take(&mut i, 1)?[0] as usize };
                let s = std::str::from_utf8(take(&mut i, n)?).map_err(|_| "a string is not UTF-8")?;
                stack.push(V::Str(s.to_string()));
            }
            b'c' => {
                let end1 = p[i..].iter().position(|&c| c == b'\n').ok_or("GLOBAL without a newline")?;
                let module = String::from_utf8_lossy(&p[i..i + end1]).into_owned();
                i += end1 + 1;
                let end2 = p[i..].iter().position(|&c| c == b'\n').ok_or("GLOBAL without a newline")?;
                let name = String::from_utf8_lossy(&p[i..i + end2]).into_owned();
                i += end2 + 1;
                stack.push(V::Global(format!("{module}.{name}")));
            }
            0x93 => {
                let (name, module) = (pop(&mut stack)?, pop(&mut stack)?);
                match (module, name) {
                    (V::Str(m), V::Str(n)) => stack.push(V::Global(format!("{m}.{n}"))),
                    _ => return Err("STACK_GLOBAL of non-strings".into()),
                }
            }
            b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'q' => take(&mut i, 1)?[0] as usize,
                    b'r' => u32::from_le_bytes(take(&mut i, 4)?.try_into().unwrap()) as usize,
                    _ => memo.len(),
                };
                memo.insert(key, stack.last().ok_or("PUT on an empty stack")?.clone());
            }
            b'h' | b'j' => {
                let key = if op == b'h' { take(&mut i, 1)?[0] as usize } else { u32::from_le_bytes(take(&mut i, 4)?.try_into().unwrap()) as usize };
                stack.push(memo.get(&key).ok_or_else(|| format!("GET of unknown memo {key}"))?.clone());
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(V::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(V::Tuple(items));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(V::List(l)) => l.push(v),
                    _ => return Err("APPEND to a non-list".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(V::List(l)) => l.extend(items),
                    _ => return Err("APPENDS to a non-list".into()),
                }
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = pop(&mut stack)?;
                    vec![pop(&mut stack)?, v]
                } else {
                    pop_mark(&mut stack)?
                };
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of items".into());
                }
                match stack.last_mut() {
                    Some(V::Dict(d)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                    _ => return Err("SETITEM(S) on a non-dict".into()),
                }
            }
            b'Q' => {
                // A storage by persistent id: ('storage', <storage class>, key, location, numel).
                let pid = pop(&mut stack)?;
                let V::Tuple(t) = &pid else { return Err(format!("persistent id {pid:?} is not a tuple")) };
                match t.as_slice() {
                    [V::Str(tag), V::Global(class), V::Str(key), V::Str(_location), V::Int(numel)] if tag == "storage" => {
                        let (dtype, dtype_name) = storage_dtype(class).ok_or_else(|| format!("storage class {class} is not supported (bf16, f16, f32 tensors only)"))?;
                        stack.push(V::Storage { dtype, dtype_name: dtype_name.into(), key: key.clone(), numel: *numel as usize });
                    }
                    _ => return Err(format!("persistent id {pid:?} is not a torch storage")),
                }
            }
            b'R' => {
                let (args, f) = (pop(&mut stack)?, pop(&mut stack)?);
                let V::Global(f) = f else { return Err(format!("REDUCE of {f:?}")) };
                let V::Tuple(args) = args else { return Err(format!("REDUCE of {f} with non-tuple arguments")) };
                match f.as_str() {
                    "collections.OrderedDict" if args.is_empty() => stack.push(V::Dict(Vec::new())),
                    "torch._utils._rebuild_tensor_v2" => {
                        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                        if args.len() < 4 {
                            return Err("_rebuild_tensor_v2 with fewer than 4 arguments".into());
                        }
                        let offset = match &args[1] {
                            V::Int(n) if *n >= 0 => *n as usize,
                            other => return Err(format!("_rebuild_tensor_v2 storage offset {other:?}")),
                        };
                        if !matches!(args[0], V::Storage { .. }) {
                            return Err(format!("_rebuild_tensor_v2 of {:?}, not a storage", args[0]));
                        }
                        let shape = usize_list(&args[2], "a tensor size")?;
                        let stride = usize_list(&args[3], "a tensor stride")?;
                        stack.push(V::Tensor { storage: Box::new(args[0].clone()), offset, shape, stride });
                    }
                    other => return Err(format!("the pickle calls {other}, which a state dict of tensors never needs (refused: a pickle can run code)")),
                }
            }
            b'b' => {
                // BUILD: an OrderedDict's attributes (torch keeps `_metadata` there): ignored.
                let _state = pop(&mut stack)?;
                if !matches!(stack.last(), Some(V::Dict(_))) {
                    return Err("BUILD on something other than a dict".into());
                }
            }
            other => return Err(format!("pickle opcode 0x{other:02x} at byte {at} is outside what torch.save writes for a state dict")),
        }
    }
}

/// Reads the state dict of a torch.save zip mapped in `b`.
pub fn read(b: &[u8], path: &Path) -> Result<Vec<BinTensor>> {
    let shown = path.display().to_string();
    let entries = zip_entries(b, &shown)?;
    let pkl = entries.iter().find(|e| e.name.ends_with("/data.pkl") && e.name.matches('/').count() == 1).ok_or_else(|| {
        model_err(format!("{shown} has no <archive>/data.pkl: not a state dict written by torch.save (the legacy non-zip format of torch < 1.6 is not supported)"))
    })?;
    let prefix = &pkl.name[..pkl.name.len() - "data.pkl".len()];
    if let Some(bo) = entries.iter().find(|e| e.name == format!("{prefix}byteorder")) {
        if &b[bo.start..bo.start + bo.len] != b"little" {
            return Err(model_err(format!("{shown} was written on a big-endian machine; only little-endian checkpoints are supported")));
        }
    }
    let records: HashMap<&str, &Entry> = entries.iter().filter_map(|e| e.name.strip_prefix(prefix).and_then(|r| r.strip_prefix("data/")).map(|k| (k, e))).collect();
    let root = unpickle(&b[pkl.start..pkl.start + pkl.len]).map_err(|e| model_err(format!("{shown}: {e}")))?;
    let V::Dict(items) = root else { return Err(model_err(format!("{shown} does not hold a state dict (a dict of tensors) at its top level"))) };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let V::Str(name) = k else { return Err(model_err(format!("{shown}: a state dict key is {k:?}, not a string"))) };
        let V::Tensor { storage, offset, shape, stride } = v else {
            return Err(model_err(format!("{shown}: {name} is not a tensor; a nested checkpoint (optimizer state, {{\"model\": …}}) is not a model's state dict")));
        };
        let V::Storage { dtype, dtype_name, key, numel } = *storage else { unreachable!("checked in REDUCE") };
        // Row-major contiguity: stride[i] = ∏ shape[i+1..] (dims of size 1 may carry any stride).
        let mut want = 1usize;
        for d in (0..shape.len()).rev() {
            if shape[d] != 1 && stride.get(d) != Some(&want) {
                return Err(model_err(format!("{shown}: tensor {name} of shape {shape:?} has strides {stride:?}, not contiguous; save it with .contiguous()")));
            }
            want *= shape[d];
        }
        let count: usize = shape.iter().product();
        let rec = records.get(key.as_str()).ok_or_else(|| model_err(format!("{shown}: tensor {name} uses storage {key}, which has no record {prefix}data/{key}")))?;
        let size = dtype.size();
        if rec.len < numel * size || offset + count > numel {
            return Err(model_err(format!("{shown}: tensor {name} {shape:?} at offset {offset} does not fit its storage {key} ({numel} elements, {} bytes stored)", rec.len)));
        }
        let start = rec.start + offset * size;
        out.push(BinTensor { name, dtype, dtype_name, shape, start, end: start + count * size });
    }
    Ok(out)
}
