//! The worker thread: loads models and runs generations. On both backends generations run together
//! through the same scheduler (continuous batching, `generate::batch`, with the CPU's or the CUDA
//! `BatchModel`): queued requests join the running batch between steps, in arrival order, up to the
//! batch limit (`--max-batch`) and the KV memory budget (`--kv-memory`), one request per session at a
//! time; `load_model` and `close_session` wait for the running requests to end. The CUDA side has
//! run on the fake GPU only (NOT ON A REAL GPU YET; scripts/gpu-check.sh).
use super::{CancelMap, FrameWriter, ServeOptions, KV_MEMORY_AUTO};
use crate::error::{EngineError, EXIT_DEVICE_FAULT};
use crate::backend::cuda::model::CudaOvis;
use crate::backend::cuda::runner::CudaBatchModel;
use crate::backend::Device;
use crate::generate::batch::{default_kv_budget, Batch, BatchModel, Output};
use crate::generate::session::Sessions;
use crate::backend::cpu::model::OvisModel;
use crate::model::source::open_model;
use crate::backend::cpu::precision::{kernels_json, set_precision, Precision};
use crate::protocol::{frame_of, kind, parse_header, Frame, Generate, LoadModel, ModelLoaded, SessionRef};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

pub enum Job {
    Frame(Frame),
}

/// A loaded model with its conversations and its running requests.
struct Served<M: BatchModel> {
    model: M,
    sessions: Sessions<M::Cache>,
    batch: Batch<M>,
}

impl<M: BatchModel> Served<M> {
    fn new(model: M, opts: &ServeOptions, kv_budget: usize) -> Self {
        Served { model, sessions: Sessions::default(), batch: Batch::new(opts.max_batch, kv_budget) }
    }
}

/// The loaded model, on the backend it was loaded for.
enum Loaded {
    Cpu(Served<OvisModel>),
    Cuda(Box<Served<CudaBatchModel>>),
}

/// Runs `$body` with `$s` bound to the loaded model's `Served`, whichever backend it is on.
macro_rules! served {
    ($loaded:expr, $s:ident => $body:expr) => {
        match $loaded {
            Loaded::Cpu($s) => $body,
            Loaded::Cuda(b) => {
                let $s = &mut **b;
                $body
            }
        }
    };
}

pub struct Worker {
    writer: FrameWriter,
    cancels: CancelMap,
    model: Option<Loaded>,
    opts: ServeOptions,
    /// Set when a request hit a device fault (EngineError::DeviceFault): the GPU's context is lost.
    faulted: Arc<AtomicBool>,
    on_fault: Option<fn(i32)>,
}

/// The frame writer as a running request's output; a finished request's cancel flag goes with it.
struct BatchOutput<'a> {
    writer: &'a FrameWriter,
    cancels: &'a CancelMap,
    faulted: &'a AtomicBool,
}

impl Output for BatchOutput<'_> {
    fn token(&self, t: &crate::protocol::Token) -> bool {
        self.writer.send_msg(kind::TOKEN, t)
    }
    fn progress(&self, p: &crate::protocol::Progress) -> bool {
        self.writer.send_msg(kind::PROGRESS, p)
    }
    fn done(&self, d: &crate::protocol::Done) {
        self.cancels.lock().unwrap().remove(&d.id);
        self.writer.send_msg(kind::DONE, d);
    }
    fn error(&self, id: u64, e: &EngineError) {
        self.cancels.lock().unwrap().remove(&id);
        // After a device fault the context is dead: the first request that met it reports it (as
        // device_error); the others of its step end with the engine.
        if matches!(e, EngineError::DeviceFault(_)) && self.faulted.swap(true, Ordering::SeqCst) {
            return;
        }
        self.writer.error(Some(id), e.code(), e.to_string());
    }
}

impl Worker {
    /// `faulted` is raised when a device fault was reported; then `opts.on_fault` (if any) is called
    /// with EXIT_DEVICE_FAULT (the engine binary exits there), and the worker stops taking requests.
    pub fn new(writer: FrameWriter, cancels: CancelMap, opts: ServeOptions, faulted: Arc<AtomicBool>) -> Self {
        Worker { writer, cancels, model: None, opts, faulted, on_fault: opts.on_fault }
    }

    /// Sends the error frame of a failed request; a device fault also marks the worker as faulted.
    fn fail(&self, id: Option<u64>, e: &EngineError) {
        self.writer.error(id, e.code(), e.to_string());
        if matches!(e, EngineError::DeviceFault(_)) {
            self.faulted.store(true, Ordering::SeqCst);
        }
    }

    pub fn run(mut self, rx: Receiver<Job>) {
        let mut queue: VecDeque<Frame> = VecDeque::new();
        let mut open = true;
        loop {
            // Wait only when there is nothing to run; otherwise take what has arrived and go on.
            if queue.is_empty() && self.idle() {
                match rx.recv() {
                    Ok(Job::Frame(f)) => queue.push_back(f),
                    Err(_) => break,
                }
            }
            while open {
                match rx.try_recv() {
                    Ok(Job::Frame(f)) => queue.push_back(f),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            self.admit(&mut queue);
            if !self.idle() {
                self.step();
            } else if !open && queue.is_empty() {
                break;
            }
            if self.faulted.load(Ordering::SeqCst) {
                // The fault was reported (once, as device_error, to the request that met it). Nothing
                // on this GPU can work any more: stop here and let the engine exit so the client
                // starts a fresh one with a new context.
                eprintln!("ovis-engine: the GPU faulted; exiting with status {EXIT_DEVICE_FAULT} (the client starts a new engine)");
                if let Some(exit) = self.on_fault {
                    exit(EXIT_DEVICE_FAULT);
                }
                break;
            }
        }
    }

    /// Whether no request is running.
    fn idle(&self) -> bool {
        match &self.model {
            Some(Loaded::Cpu(s)) => s.batch.is_empty(),
            Some(Loaded::Cuda(s)) => s.batch.is_empty(),
            None => true,
        }
    }

    /// Starts queued work in arrival order: generations join the batch while there is room and
    /// their session is free; anything else waits until the batch is empty, then runs on its own.
    fn admit(&mut self, queue: &mut VecDeque<Frame>) {
        while let Some(frame) = queue.front() {
            if self.faulted.load(Ordering::SeqCst) {
                return;
            }
            let batched = frame.kind == kind::GENERATE && self.model.is_some();
            if batched {
                // (a bad header is answered by join_batch)
                if let (Ok(req), Some(loaded)) = (parse_header::<Generate>(frame), &mut self.model) {
                    if !served!(loaded, s => s.batch.can_admit(&s.model, &mut s.sessions, &req)) {
                        return;
                    }
                }
            } else if !self.idle() {
                return;
            }
            let frame = queue.pop_front().expect("front exists");
            let outcome = catch_unwind(AssertUnwindSafe(|| if batched { self.join_batch(&frame) } else { self.handle(&frame) }));
            if outcome.is_err() {
                self.internal_error(&frame);
            }
        }
    }

    /// One step of the running batch; a panic in it fails the requests of the batch, not the engine.
    fn step(&mut self) {
        let Some(loaded) = &mut self.model else { return };
        let out = BatchOutput { writer: &self.writer, cancels: &self.cancels, faulted: &self.faulted };
        let abandoned = served!(loaded, s => {
            let Served { model, sessions, batch } = s;
            if catch_unwind(AssertUnwindSafe(|| batch.step(model, sessions, &out))).is_err() { batch.abandon() } else { Vec::new() }
        });
        for id in abandoned {
            self.cancels.lock().unwrap().remove(&id);
            self.writer.error(Some(id), "internal", "the engine hit an internal error while serving this request (see its stderr); it keeps serving");
        }
    }

    fn join_batch(&mut self, frame: &Frame) {
        let req = match parse_header::<Generate>(frame) {
            Ok(r) => r,
            Err(e) => return self.bad_generate_header(frame, e),
        };
        let Some(loaded) = &mut self.model else { unreachable!("joins only with a model loaded") };
        let cancel = self.cancels.lock().unwrap().get(&req.id).cloned().unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        let out = BatchOutput { writer: &self.writer, cancels: &self.cancels, faulted: &self.faulted };
        let id = req.id;
        let joined = parse_body(&req, &frame.body).and_then(|(ids, pixels)| served!(loaded, s => s.batch.admit(&s.model, &mut s.sessions, req, &ids, &pixels, cancel, &out)));
        if let Err(e) = joined {
            out.error(id, &e);
        }
    }

    /// A panic while handling `frame`: a bug in the engine; the request fails with `internal` and
    /// the engine keeps serving.
    fn internal_error(&self, frame: &Frame) {
        let id = parse_header::<crate::protocol::IdOnly>(frame).ok().map(|r| r.id);
        if let Some(id) = id {
            self.cancels.lock().unwrap().remove(&id);
        }
        self.writer.error(id, "internal", "the engine hit an internal error while serving this request (see its stderr); it keeps serving");
    }

    fn bad_generate_header(&self, frame: &Frame, e: String) {
        let id = parse_header::<crate::protocol::IdOnly>(frame).ok().map(|r| r.id);
        if let Some(id) = id {
            self.cancels.lock().unwrap().remove(&id);
        }
        self.writer.error(id, "bad_header", e)
    }

    fn handle(&mut self, frame: &Frame) {
        match frame.kind {
            kind::LOAD_MODEL => match parse_header::<LoadModel>(frame) {
                Ok(req) => self.load(req),
                Err(e) => self.writer.error(None, "bad_header", e),
            },
            kind::GENERATE => match parse_header::<Generate>(frame) {
                Ok(req) => self.generate(req),
                Err(e) => self.bad_generate_header(frame, e),
            },
            kind::CLOSE_SESSION => match parse_header::<SessionRef>(frame) {
                Ok(req) => {
                    if let Some(loaded) = &mut self.model {
                        served!(loaded, s => s.sessions.close(&req.session));
                    }
                    self.writer.send_msg(kind::SESSION_CLOSED, &req);
                }
                Err(e) => self.writer.error(None, "bad_header", e),
            },
            _ => unreachable!("the reader queues only load_model, generate and close_session"),
        }
    }

    fn load(&mut self, req: LoadModel) {
        let selection = match crate::backend::resolve(&req.device) {
            Ok(d) => d,
            Err(e) => return self.fail(Some(req.id), &e),
        };
        let precision = match Precision::parse(req.precision.as_deref().unwrap_or("f32")) {
            Ok(p) => p,
            Err(e) => return self.writer.error(Some(req.id), "bad_header", format!("load_model: {e}")),
        };
        let weights = match crate::backend::cpu::quant::weight_mode(req.weights.as_deref(), &selection.device) {
            Ok(w) => w,
            Err(e) => return self.fail(Some(req.id), &e),
        };
        // The old model (and its device memory) goes before the new one is loaded.
        self.model = None;
        let t = std::time::Instant::now();
        let dir = Path::new(&req.model_dir);
        // Both backends read their weights through the source, so a LoRA adapter merged there serves both.
        let (mut adapter, mut checkpoint) = (None, None);
        let loaded = open_model(dir, req.lora.as_deref().map(Path::new)).and_then(|(cfg, source)| {
            adapter = source.adapter().map(|a| a.describe());
            checkpoint = source.checkpoint(dir);
            let given = (self.opts.kv_memory != KV_MEMORY_AUTO).then_some(self.opts.kv_memory);
            match selection.device {
                Device::Cpu => OvisModel::from_source(cfg, &source, weights).map(|m| Loaded::Cpu(Served::new(m, &self.opts, given.unwrap_or_else(default_kv_budget)))),
                Device::Cuda(n) => CudaOvis::load(n, cfg, &source).and_then(|m| {
                    let m = CudaBatchModel::new(m);
                    let budget = match given {
                        Some(b) => b,
                        None => m.default_kv_budget()?,
                    };
                    Ok(Loaded::Cuda(Box::new(Served::new(m, &self.opts, budget))))
                }),
            }
        });
        match loaded {
            Ok(model) => {
                eprintln!("ovis-engine: loaded {} on {} in {:.0} ms", req.model_dir, selection.backend, t.elapsed().as_secs_f64() * 1e3);
                let mut info = match &model {
                    Loaded::Cpu(s) => s.model.info(&selection.backend, &selection.description),
                    Loaded::Cuda(s) => s.model.model.info(&selection.backend, &selection.description),
                };
                if info.get("weights").is_none() {
                    info["weights"] = serde_json::json!("bf16");
                }
                if let Some(a) = adapter {
                    info["adapter"] = a;
                }
                if let Some(c) = checkpoint {
                    info["checkpoint"] = c;
                }
                if let Loaded::Cpu(..) = &model {
                    // Process-wide: one model per engine, set before its first product.
                    set_precision(precision);
                    info["kernels"] = kernels_json(precision);
                }
                self.model = Some(model);
                self.writer.send(&frame_of(kind::MODEL_LOADED, &ModelLoaded { id: req.id, info }, Vec::new()));
            }
            Err(e) => self.fail(Some(req.id), &e),
        }
    }

    /// A generate request with no model loaded (with one, requests join the batch).
    fn generate(&mut self, req: Generate) {
        self.cancels.lock().unwrap().remove(&req.id);
        self.fail(Some(req.id), &EngineError::NoModel);
    }
}

/// The generate body: `n_ids` i32 token ids, then the media's f32 pixels.
fn parse_body(req: &Generate, body: &[u8]) -> Result<(Vec<i32>, Vec<f32>), EngineError> {
    let id_bytes = req.n_ids.checked_mul(4).filter(|&b| b <= body.len()).ok_or_else(|| {
        EngineError::BadRequest(format!("n_ids = {} needs {} body bytes but the body has {}", req.n_ids, req.n_ids.saturating_mul(4), body.len()))
    })?;
    let rest = &body[id_bytes..];
    if rest.len() % 4 != 0 {
        return Err(EngineError::BadRequest(format!("the pixel part of the body has {} bytes, not a multiple of 4", rest.len())));
    }
    let ids: Vec<i32> = body[..id_bytes].chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    let pixels: Vec<f32> = rest.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Ok((ids, pixels))
}
