//! Memory-mapped safetensors (one `model.safetensors` or shards through `model.safetensors.index.json`).
//! Tensors stay in the page cache as stored (bf16); the CPU forward widens them to f32 in registers.
use crate::error::{model_err, Result};
use half::bf16;
use memmap2::Mmap;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    BF16,
    F16,
    F32,
    I64,
    U8,
    Other,
}

impl DType {
    fn parse(s: &str) -> DType {
        match s {
            "BF16" => DType::BF16,
            "F16" => DType::F16,
            "F32" => DType::F32,
            "I64" => DType::I64,
            "U8" => DType::U8,
            _ => DType::Other,
        }
    }
    pub fn size(self) -> usize {
        match self {
            DType::BF16 | DType::F16 => 2,
            DType::F32 => 4,
            DType::I64 => 8,
            DType::U8 | DType::Other => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub dtype: DType,
    pub dtype_name: String,
    pub shape: Vec<usize>,
    /// Index into the weight files (`Weights::files`).
    pub file: usize,
    /// Absolute byte range inside the mapped file.
    start: usize,
    end: usize,
}

/// A borrowed tensor: raw bytes plus metadata.
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub bytes: &'a [u8],
}

pub struct Weights {
    maps: Vec<Mmap>,
    files: Vec<PathBuf>,
    tensors: HashMap<String, TensorInfo>,
}

impl Weights {
    /// Opens every weight file of a model directory; fails with a message naming the file and problem.
    /// safetensors (`model.safetensors` or shards through `model.safetensors.index.json`) are preferred;
    /// without them, the `pytorch_model*.bin` state dicts a trainer wrote (torch_bin.rs) are read.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let bin_index = dir.join("pytorch_model.bin.index.json");
        let bin_single = dir.join("pytorch_model.bin");
        if dir.join("model.safetensors.index.json").exists() || dir.join("model.safetensors").exists() || !(bin_index.exists() || bin_single.exists()) {
            Self::open_layout(dir, "model.safetensors")
        } else {
            Self::open_layout(dir, "pytorch_model.bin")
        }
    }

    /// `single` (e.g. model.safetensors) or the shards that `<single>.index.json` lists.
    fn open_layout(dir: &Path, single_name: &str) -> Result<Self> {
        let index_name = format!("{single_name}.index.json");
        let index = dir.join(&index_name);
        let single = dir.join(single_name);
        if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| model_err(format!("cannot read {}: {e}", index.display())))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| model_err(format!("{} is not valid JSON: {e}", index.display())))?;
            let map = v.get("weight_map").and_then(Value::as_object).ok_or_else(|| model_err(format!("{}: weight_map is missing", index.display())))?;
            let mut shards: Vec<String> = map.values().filter_map(Value::as_str).map(str::to_string).collect();
            shards.sort();
            shards.dedup();
            let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
            let w = Self::open_files(&paths)?;
            for (name, shard) in map {
                let shard = shard.as_str().unwrap_or("");
                match w.tensors.get(name) {
                    None => return Err(model_err(format!("tensor {name} is listed in {index_name} (shard {shard}) but missing from that file"))),
                    Some(t) if w.files[t.file].file_name().and_then(|f| f.to_str()) != Some(shard) => {
                        return Err(model_err(format!("tensor {name} is listed in shard {shard} but found in {}", w.files[t.file].display())))
                    }
                    _ => {}
                }
            }
            Ok(w)
        } else if single.exists() {
            Self::open_files(&[single])
        } else {
            Err(model_err(format!("no weights in {}: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json", dir.display())))
        }
    }

    /// The weight files, in the order opened.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn open_files(paths: &[PathBuf]) -> Result<Self> {
        let mut w = Weights { maps: Vec::new(), files: Vec::new(), tensors: HashMap::new() };
        for (i, p) in paths.iter().enumerate() {
            let f = File::open(p).map_err(|e| model_err(format!("cannot open weight file {}: {e}", p.display())))?;
            // SAFETY: the file is opened read-only; a concurrent truncation by another process is outside our contract.
            let map = unsafe { Mmap::map(&f) }.map_err(|e| model_err(format!("cannot map {}: {e}", p.display())))?;
            let tensors = if p.extension().is_some_and(|e| e == "bin") { bin_tensors(&map, p, i)? } else { parse_header(&map, p, i)? };
            for (name, info) in tensors {
                if w.tensors.insert(name.clone(), info).is_some() {
                    return Err(model_err(format!("tensor {name} appears in more than one weight file")));
                }
            }
            w.maps.push(map);
            w.files.push(p.clone());
        }
        Ok(w)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    pub fn view(&self, name: &str) -> Result<TensorView<'_>> {
        let info = self.tensors.get(name).ok_or_else(|| model_err(format!("tensor {name} is missing from the weights")))?;
        Ok(TensorView { info, bytes: &self.maps[info.file][info.start..info.end] })
    }

    /// A bf16 tensor of exactly `shape`, kept alive by a reference to the mapping (no copy unless misaligned).
    pub fn bf16(self: &Arc<Self>, name: &str, shape: &[usize]) -> Result<WeightRef> {
        let v = self.view(name)?;
        if v.info.dtype != DType::BF16 {
            return Err(model_err(format!("tensor {name} has dtype {}, expected BF16", v.info.dtype_name)));
        }
        if v.info.shape != shape {
            return Err(model_err(format!("tensor {name} has shape {:?}, expected {:?} from config.json", v.info.shape, shape)));
        }
        let owned = if (v.bytes.as_ptr() as usize) % 2 == 0 {
            None
        } else {
            Some(Arc::new(v.bytes.chunks_exact(2).map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect::<Vec<_>>()))
        };
        Ok(WeightRef { owner: Arc::clone(self), file: v.info.file, start: v.info.start, len: v.bytes.len() / 2, owned, shape: shape.to_vec() })
    }
}

/// A bf16 weight tensor living in the memory-mapped file (the `Arc` keeps the mapping alive).
#[derive(Clone)]
pub struct WeightRef {
    owner: Arc<Weights>,
    file: usize,
    start: usize,
    len: usize,
    /// Only for a tensor whose file offset is odd (never seen in practice): an aligned copy.
    owned: Option<Arc<Vec<bf16>>>,
    pub shape: Vec<usize>,
}

impl WeightRef {
    /// An owned tensor with no file behind it (synthetic weights for tests and benchmarks).
    pub fn from_vec(data: Vec<bf16>, shape: &[usize]) -> WeightRef {
        assert_eq!(data.len(), shape.iter().product::<usize>(), "from_vec: data length does not match shape {shape:?}");
        let owner = Arc::new(Weights { maps: Vec::new(), files: Vec::new(), tensors: HashMap::new() });
        WeightRef { owner, file: 0, start: 0, len: data.len(), owned: Some(Arc::new(data)), shape: shape.to_vec() }
    }
    pub fn data(&self) -> &[bf16] {
        if let Some(o) = &self.owned {
            return o;
        }
        let bytes = &self.owner.maps[self.file][self.start..self.start + self.len * 2];
        // SAFETY: checked 2-byte aligned when created; bf16 is a plain u16; the map lives as long as `owner`.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const bf16, self.len) }
    }
    /// Gives the tensor up once a copy in another form exists (weights quantized at load): an owned
    /// copy is freed with its last reference; a memory-mapped tensor's whole pages are dropped from
    /// this process (MADV_DONTNEED: the page cache may keep them, but they no longer count in this
    /// process's resident memory; a later read would fault them back in from the file).
    pub fn release(self) {
        if self.owned.is_some() {
            return;
        }
        let map = &self.owner.maps[self.file];
        let page = 4096;
        let base = map.as_ptr() as usize;
        let (start, end) = (base + self.start, base + self.start + self.len * 2);
        let (first, last) = (start.div_ceil(page) * page, end / page * page);
        if last > first {
            // SAFETY: a read-only private file mapping: dropped pages are re-read from the unchanged
            // file if touched again, so no reference into the map sees different contents.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first - base, last - first) };
        }
    }

    /// The tensor widened to f32 (for small tensors: norms, biases).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data().iter().map(|v| v.to_f32()).collect()
    }
}

fn parse_header(map: &[u8], path: &Path, file: usize) -> Result<Vec<(String, TensorInfo)>> {
    let shown = path.display();
    if map.len() < 8 {
        return Err(model_err(format!("{shown} is truncated: {} bytes, too short for a safetensors header", map.len())));
    }
    let n = u64::from_le_bytes(map[0..8].try_into().unwrap()) as usize;
    if n > map.len() - 8 || n > 100 << 20 {
        return Err(model_err(format!("{shown} is truncated or not a safetensors file: header length {n} exceeds the file size {}", map.len())));
    }
    let header: Value = serde_json::from_slice(&map[8..8 + n]).map_err(|e| model_err(format!("{shown}: safetensors header is not valid JSON: {e}")))?;
    let obj = header.as_object().ok_or_else(|| model_err(format!("{shown}: safetensors header is not a JSON object")))?;
    let blob = 8 + n;
    let mut out = Vec::with_capacity(obj.len());
    for (name, v) in obj {
        if name == "__metadata__" {
            continue;
        }
        let dtype_name = v.get("dtype").and_then(Value::as_str).unwrap_or("?").to_string();
        let shape: Vec<usize> = v.get("shape").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).map(|x| x as usize).collect()).unwrap_or_default();
        let offs: Vec<usize> = v.get("data_offsets").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).map(|x| x as usize).collect()).unwrap_or_default();
        if offs.len() != 2 || offs[0] > offs[1] {
            return Err(model_err(format!("{shown}: tensor {name} has invalid data_offsets")));
        }
        let dtype = DType::parse(&dtype_name);
        let numel: usize = shape.iter().product();
        if dtype != DType::Other && numel * dtype.size() != offs[1] - offs[0] {
            return Err(model_err(format!("{shown}: tensor {name} of shape {shape:?} {dtype_name} needs {} bytes but data_offsets span {}", numel * dtype.size(), offs[1] - offs[0])));
        }
        let (start, end) = (blob + offs[0], blob + offs[1]);
        if end > map.len() {
            return Err(model_err(format!("{shown} is truncated: tensor {name} ends at byte {end} but the file has {} bytes", map.len())));
        }
        out.push((name.clone(), TensorInfo { dtype, dtype_name, shape, file, start, end }));
    }
    Ok(out)
}

/// The tensors of a torch.save state dict (pytorch_model*.bin), as byte ranges of the mapped zip.
fn bin_tensors(map: &[u8], path: &Path, file: usize) -> Result<Vec<(String, TensorInfo)>> {
    Ok(crate::model::torch_bin::read(map, path)?
        .into_iter()
        .map(|t| (t.name, TensorInfo { dtype: t.dtype, dtype_name: t.dtype_name, shape: t.shape, file, start: t.start, end: t.end }))
        .collect())
}
