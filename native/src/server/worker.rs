//! The worker thread: loads models and runs generations. On the CPU, generations run together
//! (continuous batching, `generate::batch`): queued requests join the running batch between steps,
//! in arrival order, up to the batch limit, one request per session at a time; `load_model` and
//! `close_session` wait for the running requests to end. On CUDA, one at a time, in arrival order.
use super::{CancelMap, FrameWriter, ServeOptions};
use crate::error::{EngineError, EXIT_DEVICE_FAULT};
use crate::backend::cuda::model::CudaOvis;
use crate::backend::cuda::qwen3::Session as CudaSession;
use crate::backend::Device;
use crate::generate::batch::{CpuBatch, Output};
use crate::generate::cpu_runner::generate;
use crate::generate::kv_cache::KvCache;
use crate::generate::run::Sink;
use crate::generate::session::Sessions;
use crate::backend::cpu::model::OvisModel;
use crate::model::source::open_model;
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

/// The loaded model with its conversations, on the backend it was loaded for.
enum Loaded {
    Cpu(OvisModel, Sessions<KvCache>),
    Cuda(Box<CudaOvis>, Sessions<CudaSession>),
}

pub struct Worker {
    writer: FrameWriter,
    cancels: CancelMap,
    model: Option<Loaded>,
    batch: CpuBatch,
    /// Set when a request hit a device fault (EngineError::DeviceFault): the GPU's context is lost.
    faulted: Arc<AtomicBool>,
    on_fault: Option<fn(i32)>,
}

/// The frame writer as a running request's output; a finished request's cancel flag goes with it.
struct BatchOutput<'a> {
    writer: &'a FrameWriter,
    cancels: &'a CancelMap,
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
        self.writer.error(Some(id), e.code(), e.to_string());
    }
}

impl Worker {
    /// `faulted` is raised when a device fault was reported; then `opts.on_fault` (if any) is called
    /// with EXIT_DEVICE_FAULT (the engine binary exits there), and the worker stops taking requests.
    pub fn new(writer: FrameWriter, cancels: CancelMap, opts: ServeOptions, faulted: Arc<AtomicBool>) -> Self {
        Worker { writer, cancels, model: None, batch: CpuBatch::new(opts.max_batch, opts.kv_memory), faulted, on_fault: opts.on_fault }
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
            if queue.is_empty() && self.batch.is_empty() {
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
            if !self.batch.is_empty() {
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

    /// Starts queued work in arrival order: CPU generations join the batch while there is room and
    /// their session is free; anything else waits until the batch is empty, then runs on its own.
    fn admit(&mut self, queue: &mut VecDeque<Frame>) {
        while let Some(frame) = queue.front() {
            if self.faulted.load(Ordering::SeqCst) {
                return;
            }
            let batched = frame.kind == kind::GENERATE && matches!(self.model, Some(Loaded::Cpu(..)));
            if batched {
                // (a bad header is answered by join_batch)
                if let (Ok(req), Some(Loaded::Cpu(model, sessions))) = (parse_header::<Generate>(frame), &mut self.model) {
                    if !self.batch.can_admit(sessions, &req, &model.cfg.llm) {
                        return;
                    }
                }
            } else if !self.batch.is_empty() {
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
        let Some(Loaded::Cpu(model, sessions)) = &mut self.model else { return };
        let out = BatchOutput { writer: &self.writer, cancels: &self.cancels };
        let batch = &mut self.batch;
        if catch_unwind(AssertUnwindSafe(|| batch.step(model, sessions, &out))).is_err() {
            for id in batch.abandon() {
                self.cancels.lock().unwrap().remove(&id);
                self.writer.error(Some(id), "internal", "the engine hit an internal error while serving this request (see its stderr); it keeps serving");
            }
        }
    }

    fn join_batch(&mut self, frame: &Frame) {
        let req = match parse_header::<Generate>(frame) {
            Ok(r) => r,
            Err(e) => return self.bad_generate_header(frame, e),
        };
        let Some(Loaded::Cpu(model, sessions)) = &mut self.model else { unreachable!("joins only with a CPU model") };
        let cancel = self.cancels.lock().unwrap().get(&req.id).cloned().unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        let out = BatchOutput { writer: &self.writer, cancels: &self.cancels };
        let id = req.id;
        let joined = parse_body(&req, &frame.body).and_then(|(ids, pixels)| self.batch.admit(model, sessions, req, &ids, &pixels, cancel, &out));
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
                Ok(req) => self.generate(req, &frame.body),
                Err(e) => self.bad_generate_header(frame, e),
            },
            kind::CLOSE_SESSION => match parse_header::<SessionRef>(frame) {
                Ok(req) => {
                    match &mut self.model {
                        Some(Loaded::Cpu(_, sessions)) => sessions.close(&req.session),
                        Some(Loaded::Cuda(_, sessions)) => sessions.close(&req.session),
                        None => false,
                    };
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
            match selection.device {
                Device::Cpu => OvisModel::from_source(cfg, &source, weights).map(|m| Loaded::Cpu(m, Sessions::default())),
                Device::Cuda(n) => CudaOvis::load(n, cfg, &source).map(|m| Loaded::Cuda(Box::new(m), Sessions::default())),
            }
        });
        match loaded {
            Ok(model) => {
                eprintln!("ovis-engine: loaded {} on {} in {:.0} ms", req.model_dir, selection.backend, t.elapsed().as_secs_f64() * 1e3);
                let mut info = match &model {
                    Loaded::Cpu(m, _) => m.info(&selection.backend, &selection.description),
                    Loaded::Cuda(m, _) => m.info(&selection.backend, &selection.description),
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
                self.model = Some(model);
                self.writer.send(&frame_of(kind::MODEL_LOADED, &ModelLoaded { id: req.id, info }, Vec::new()));
            }
            Err(e) => self.fail(Some(req.id), &e),
        }
    }

    fn generate(&mut self, req: Generate, body: &[u8]) {
        let flag = self.cancels.lock().unwrap().get(&req.id).cloned().unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        let result = self.run_generate(&req, body, &flag);
        self.cancels.lock().unwrap().remove(&req.id);
        match result {
            Ok(done) => {
                self.writer.send_msg(kind::DONE, &done);
            }
            Err(e) => self.fail(Some(req.id), &e),
        }
    }

    fn run_generate(&mut self, req: &Generate, body: &[u8], cancel: &AtomicBool) -> Result<crate::protocol::Done, EngineError> {
        let model = self.model.as_mut().ok_or(EngineError::NoModel)?;
        let (ids, pixels) = parse_body(req, body)?;
        let writer = self.writer.clone();
        // A client that stopped reading cancels its request instead of leaving the engine generating.
        let mut emit = |tok: crate::protocol::Token| {
            if !writer.send_msg(kind::TOKEN, &tok) {
                cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        };
        let progress_writer = self.writer.clone();
        let mut progress = |p: crate::protocol::Progress| {
            if !progress_writer.send_msg(kind::PROGRESS, &p) {
                cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        };
        let sink = Sink { token: &mut emit, progress: &mut progress };
        match model {
            Loaded::Cpu(model, sessions) => {
                let cache = sessions.get_or_create(&req.session, || Ok(KvCache::new(&model.cfg.llm)))?;
                generate(model, cache, req, &ids, &pixels, cancel, sink)
            }
            Loaded::Cuda(model, sessions) => {
                let session = sessions.get_or_create(&req.session, || model.new_session())?;
                model.generate(session, req, &ids, &pixels, cancel, sink)
            }
        }
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
