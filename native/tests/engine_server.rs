//! The request loop against in-memory streams: handshake, garbage on stdin, bad requests, and
//! that the engine keeps serving after each failure. (The real engine process is driven end to
//! end by the CLI tests in test/cli.)
use ovis_engine::protocol::*;
use ovis_engine::server::{serve, FrameWriter};
use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex};
mod common;
use common::Shared;
mod fakecuda;
mod skip;


/// $OVIS_FIXTURE_DIR (binaries carried to a GPU machine), else this source tree's fixture.
fn fixture() -> String {
    std::env::var("OVIS_FIXTURE_DIR").unwrap_or_else(|_| format!("{}/../test/fixtures/tiny-ovis2.5", env!("CARGO_MANIFEST_DIR")))
}

fn hello() -> Vec<u8> {
    frame_of(kind::HELLO, &Hello { protocol: 1, client: "test".into() }, vec![]).encode()
}

/// Runs the loop over `input`; returns (exit status, every frame written, as (kind, header JSON)).
fn run(input: Vec<u8>) -> (i32, Vec<(u8, serde_json::Value)>) {
    let out = Shared::default();
    let status = serve(Cursor::new(input), FrameWriter::new(Box::new(out.clone())));
    let bytes = out.0.lock().unwrap().clone();
    let mut r = Cursor::new(bytes);
    let mut frames = vec![];
    loop {
        match read_frame(&mut r) {
            Ok(f) => frames.push((f.kind, serde_json::from_slice(&f.header).unwrap())),
            Err(ReadError::Eof) => break,
            Err(e) => panic!("engine wrote a bad frame: {e:?}"),
        }
    }
    (status, frames)
}

fn generate(id: u64, ids: &[i32], max_new: usize) -> Vec<u8> {
    generate_media(id, "s", 0, ids, &[], max_new, vec![151645])
}

/// A greedy generate frame; `pixels` (if any) are one 32×32 image (grid 1×2×2).
fn generate_media(id: u64, session: &str, keep: usize, ids: &[i32], pixels: &[f32], max_new: usize, stop_ids: Vec<u32>) -> Vec<u8> {
    let media = if pixels.is_empty() { vec![] } else { vec![MediaSpec { kind: "image".into(), grid: [1, 2, 2] }] };
    let g = Generate { id, session: session.into(), keep, n_ids: ids.len(), media, max_new_tokens: max_new, sampling: Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: 0 }, stop_ids, top_logprobs: 0 };
    let mut body: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    body.extend(pixels.iter().flat_map(|p| p.to_le_bytes()));
    frame_of(kind::GENERATE, &g, body).encode()
}

fn generate_in(id: u64, session: &str, keep: usize, ids: &[i32], max_new: usize) -> Vec<u8> {
    generate_media(id, session, keep, ids, &[], max_new, vec![])
}

fn load(id: u64, dir: &str) -> Vec<u8> {
    load_on(id, dir, "auto")
}

fn load_on(id: u64, dir: &str, device: &str) -> Vec<u8> {
    frame_of(kind::LOAD_MODEL, &LoadModel { id, model_dir: dir.into(), device: device.into(), lora: None, precision: None, weights: None }, vec![]).encode()
}

#[test]
fn handshake_reports_protocol_backend_and_device() {
    let (status, frames) = run(hello());
    assert_eq!(status, 0);
    assert_eq!(frames[0].0, kind::HELLO_OK);
    assert_eq!(frames[0].1["protocol"], 1);
    assert_eq!(frames[0].1["backend"], "cpu");
}

#[test]
fn wrong_protocol_version_is_refused_and_the_engine_exits() {
    let h = frame_of(kind::HELLO, &Hello { protocol: 99, client: "x".into() }, vec![]).encode();
    let (status, frames) = run(h);
    assert_eq!(status, 2);
    assert_eq!(frames[0].1["code"], "version_mismatch");
}

#[test]
fn unknown_kind_and_bad_header_are_errors_and_serving_continues() {
    let mut input = hello();
    input.extend(Frame::new(0x7f, b"{}".to_vec(), vec![]).encode());
    input.extend(Frame::new(kind::GENERATE, b"{not json".to_vec(), vec![]).encode());
    input.extend(generate(5, &[1, 2], 1));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    let codes: Vec<_> = frames.iter().map(|f| f.1["code"].clone()).collect();
    assert_eq!(codes[1], "unknown_kind");
    assert_eq!(codes[2], "bad_header");
    assert_eq!(frames[3].1["code"], "no_model", "generate before load_model");
    assert_eq!(frames[3].1["id"], 5);
}

#[test]
fn zero_length_frame_is_fatal_with_an_error_frame() {
    let mut input = hello();
    input.extend([0, 0, 0, 0, 9, 9]);
    let (status, frames) = run(input);
    assert_eq!(status, 2);
    assert_eq!(frames.last().unwrap().1["code"], "bad_frame");
}

#[test]
fn truncated_frame_is_fatal_with_an_error_frame() {
    let mut input = hello();
    input.extend([100, 0, 0, 0, kind::GENERATE, 1, 2]);
    let (status, frames) = run(input);
    assert_eq!(status, 2);
    assert_eq!(frames.last().unwrap().1["code"], "bad_frame");
}

#[test]
fn huge_length_is_fatal_without_allocating_it() {
    let mut input = hello();
    input.extend([0xff, 0xff, 0xff, 0xff]);
    let (status, frames) = run(input);
    assert_eq!(status, 2);
    assert_eq!(frames.last().unwrap().1["code"], "bad_frame");
}

#[test]
fn frames_before_hello_are_refused() {
    let (status, frames) = run(generate(1, &[1], 1));
    assert_eq!(status, 0);
    assert_eq!(frames[0].1["code"], "bad_request");
}

#[test]
fn bad_model_dir_then_good_one_then_bad_requests_then_generation() {
    let mut input = hello();
    input.extend(load(1, "/nonexistent/model"));
    input.extend(load(2, &fixture()));
    input.extend(generate(3, &[-7], 1));
    input.extend(generate(4, &[200_000], 1));
    input.extend(generate(5, &[-300, 1], 1));
    input.extend(generate(6, &[151644, 872, 198], 3));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    assert_eq!(frames[1].1["code"], "model_error");
    assert!(frames[1].1["message"].as_str().unwrap().contains("/nonexistent/model"));
    assert_eq!(frames[2].0, kind::MODEL_LOADED);
    assert_eq!(frames[2].1["info"]["llm"]["hidden"], 32);
    for (i, id) in [(3, 3), (4, 4), (5, 5)] {
        assert_eq!(frames[i].1["code"], "bad_request", "request {id}");
        assert_eq!(frames[i].1["id"], id);
    }
    let tokens: Vec<_> = frames.iter().filter(|f| f.0 == kind::TOKEN).collect();
    assert_eq!(tokens.len(), 3);
    let done = frames.last().unwrap();
    assert_eq!(done.0, kind::DONE);
    assert_eq!(done.1["finish_reason"], "length");
    assert_eq!(done.1["completion_tokens"], 3);
}

/// load_model with `"weights"`: int8 loads and generates (info names the mode and kernel); an
/// unknown mode is a bad_request naming it, and the model already loaded keeps answering.
#[test]
fn load_model_weights_int8_and_an_unknown_mode() {
    let with = |id: u64, w: &str| frame_of(kind::LOAD_MODEL, &LoadModel { id, model_dir: fixture(), device: "cpu".into(), lora: None, precision: None, weights: Some(w.into()) }, vec![]).encode();
    let mut input = hello();
    input.extend(with(1, "int8"));
    input.extend(with(2, "int3"));
    input.extend(generate(3, &[151644, 872, 198], 2));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    assert_eq!(frames[1].0, kind::MODEL_LOADED);
    let info = &frames[1].1["info"];
    assert_eq!(info["weights"], "int8");
    assert!(["avx512-vnni", "avx2", "scalar"].contains(&info["weights_kernel"].as_str().unwrap()), "{info}");
    assert_eq!(frames[2].1["code"], "bad_request");
    assert!(frames[2].1["message"].as_str().unwrap().contains("\"int3\" is not a weight mode"), "{:?}", frames[2]);
    assert_eq!(tokens_of(&frames, 3).len(), 2, "the int8 model still answers");
}

fn tokens_of(frames: &[(u8, serde_json::Value)], id: u64) -> Vec<i64> {
    frames.iter().filter(|f| f.0 == kind::TOKEN && f.1["id"] == id).map(|f| f.1["token"].as_i64().unwrap()).collect()
}

#[test]
fn a_session_continues_from_its_cache_like_a_fresh_prompt() {
    let prompt = [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198];
    // First turn: 4 tokens. The cache then holds the prompt and the first 3 of them.
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_in(2, "chat", 0, &prompt, 4));
    let (_, frames) = run(input);
    let first = tokens_of(&frames, 2);
    assert_eq!(first.len(), 4);
    // Continue: keep everything cached and send only the last token plus new text.
    let follow = [first[3] as i32, 198, 3838];
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_in(2, "chat", 0, &prompt, 4));
    input.extend(generate_in(3, "chat", prompt.len() + 3, &follow, 3));
    let (_, frames) = run(input);
    let continued = tokens_of(&frames, 3);
    let done = frames.iter().find(|f| f.0 == kind::DONE && f.1["id"] == 3).unwrap();
    assert_eq!(done.1["cached_tokens"], prompt.len() + 3);
    assert_eq!(done.1["prompt_tokens"], 3);
    // The same conversation sent whole to a fresh session gives the same tokens.
    let mut whole: Vec<i32> = prompt.to_vec();
    whole.extend(first.iter().map(|&t| t as i32));
    whole.extend(&follow[1..]);
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_in(4, "fresh", 0, &whole, 3));
    let (_, frames) = run(input);
    assert_eq!(tokens_of(&frames, 4), continued);
}

#[test]
fn keep_beyond_the_cache_is_a_bad_request_and_close_session_answers() {
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_in(2, "s", 5, &[1, 2], 1));
    input.extend(frame_of(kind::CLOSE_SESSION, &SessionRef { session: "s".into() }, vec![]).encode());
    let (_, frames) = run(input);
    assert_eq!(frames[2].1["code"], "bad_request");
    assert!(frames[2].1["message"].as_str().unwrap().contains("keep = 5"));
    assert_eq!(frames[3].0, kind::SESSION_CLOSED);
}

#[test]
fn a_cancel_sent_right_after_the_request_stops_it_early() {
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_in(2, "s", 0, &[151644, 872, 198], 1000));
    input.extend(frame_of(kind::CANCEL, &IdOnly { id: 2 }, vec![]).encode());
    let (_, frames) = run(input);
    let done = frames.iter().find(|f| f.0 == kind::DONE).expect("a done frame");
    assert_eq!(done.1["finish_reason"], "cancelled");
    assert!(done.1["completion_tokens"].as_u64().unwrap() < 1000);
}

/// Accepts `ok` writes, then fails every write as a closed pipe does; counts the attempts.
#[derive(Clone)]
struct ClosingPipe {
    ok: usize,
    attempts: Arc<Mutex<usize>>,
}
impl Write for ClosingPipe {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let mut n = self.attempts.lock().unwrap();
        *n += 1;
        if *n > self.ok {
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_client_that_stops_reading_cancels_its_generation() {
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_in(2, "s", 0, &[151644, 872, 198], 40_000));
    // hello_ok and model_loaded go through, then the pipe closes.
    let pipe = ClosingPipe { ok: 2, attempts: Arc::new(Mutex::new(0)) };
    let status = serve(Cursor::new(input), FrameWriter::new(Box::new(pipe.clone())));
    assert_eq!(status, 0);
    let attempts = *pipe.attempts.lock().unwrap();
    assert!(attempts < 10, "the engine kept writing {attempts} frames into a closed pipe");
}

#[test]
fn a_turn_after_an_image_keeps_the_image_in_the_cache() {
    // One 32×32 image (grid 1×2×2 = one visual atom), then a text follow-up in the same session.
    let pixels: Vec<f32> = (0..4 * 768).map(|i| ((i * 37) % 255) as f32 / 127.5 - 1.0).collect();
    let turn1 = [151644, 872, 198, -301, -300, -302, 198, 3838, 151645, 198, 151644, 77091, 198];
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_media(2, "chat", 0, &turn1, &pixels, 3, vec![]));
    let (_, frames) = run(input.clone());
    let first = tokens_of(&frames, 2);
    let follow = [first[2] as i32, 151645, 198, 151644, 872, 198, 9707];
    input.extend(generate_media(3, "chat", turn1.len() + 2, &follow, &[], 3, vec![]));
    let (_, frames) = run(input);
    let continued = tokens_of(&frames, 3);
    assert_eq!(continued.len(), 3);
    // The whole conversation, image included, sent afresh gives the same tokens.
    let mut whole: Vec<i32> = turn1.to_vec();
    whole.extend(first.iter().map(|&t| t as i32));
    whole.extend(&follow[1..]);
    let mut input = hello();
    input.extend(load(1, &fixture()));
    input.extend(generate_media(4, "fresh", 0, &whole, &pixels, 3, vec![]));
    let (_, frames) = run(input);
    assert_eq!(tokens_of(&frames, 4), continued);
}

#[test]
fn a_cpu_encode_reports_each_layer_with_its_elapsed_time_and_the_load_its_speed() {
    let pixels: Vec<f32> = (0..4 * 768).map(|i| ((i * 37) % 255) as f32 / 127.5 - 1.0).collect();
    let ids = [151644, 872, 198, -301, -300, -302, 198, 3838, 151645, 198, 151644, 77091, 198];
    let mut input = hello();
    input.extend(load_on(1, &fixture(), "cpu"));
    input.extend(generate_media(2, "s", 0, &ids, &pixels, 2, vec![]));
    let (_, frames) = run(input);
    let info = &frames.iter().find(|(k, _)| *k == kind::MODEL_LOADED).expect("model_loaded").1["info"];
    // The fixture's ViT: 2 layers, D 48, I 96 (test/fixtures/tiny-ovis2.5/config.json).
    assert_eq!(info["vit"]["intermediate"], 96, "{info}");
    for rate in ["gemm_gflops", "attention_gflops"] {
        let v = info["vision_speed"][rate].as_f64().unwrap_or(-1.0);
        assert!(v >= 0.0 && v.is_finite(), "{rate} in {info}");
    }
    let vision: Vec<&serde_json::Value> = frames.iter().filter(|(k, h)| *k == kind::PROGRESS && h["phase"] == "vision").map(|(_, h)| h).collect();
    let done: Vec<u64> = vision.iter().map(|h| h["done"].as_u64().unwrap()).collect();
    assert_eq!(done, [0, 1, 2], "one event before the encode and one per layer: {vision:?}");
    let elapsed: Vec<f64> = vision.iter().map(|h| h["elapsed_ms"].as_f64().expect("elapsed_ms on vision events")).collect();
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]) && elapsed[0] >= 0.0, "{elapsed:?}");
    let prefill = frames.iter().find(|(k, h)| *k == kind::PROGRESS && h["phase"] == "prefill").expect("a prefill event");
    assert!(prefill.1.get("elapsed_ms").is_none(), "prefill events carry no elapsed_ms: {}", prefill.1);
}

/// The whole engine on the GPU (worker, sessions, CUDA model) serves the same requests as on the CPU:
/// the same first tokens for a text prompt, an image prompt and a kept session's next turn. Ignored
/// without --include-ignored (scripts/gpu-check.sh runs it on a GPU, the fake GPU on the CPU).
#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn cuda_serves_the_same_first_tokens_as_the_cpu() {
    if !skip::gpu_present("cuda_serves_the_same_first_tokens_as_the_cpu") {
        return;
    }
    let pixels: Vec<f32> = (0..4 * 768).map(|i| ((i * 37) % 255) as f32 / 127.5 - 1.0).collect();
    let image: Vec<i32> = [vec![151644, 872, 198, -301], vec![-300], vec![-302, 3838, 151645, 198, 151644, 77091, 198]].concat();
    let run_on = |device: &str| {
        let mut input = hello();
        input.extend(load_on(1, &fixture(), device));
        input.extend(generate_in(2, "a", 0, &[151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198], 1));
        input.extend(generate_media(3, "b", 0, &image, &pixels, 1, vec![]));
        // (Prompts chosen so that every first token wins by ≥ 0.19 on the CPU: far above bf16 noise.)
        input.extend(generate_in(4, "a", 9, &[40, 1079, 264], 1));
        let (status, frames) = run(input);
        assert_eq!(status, 0, "{device}");
        assert!(frames.iter().all(|f| f.0 != kind::ERROR), "{device}: {frames:?}");
        (2..=4).map(|id| tokens_of(&frames, id)).collect::<Vec<_>>()
    };
    assert_eq!(run_on("cuda"), run_on("cpu"));
}

/// On the GPU a bad request (keep beyond the session, an out-of-vocabulary id, pixels that do not match
/// the grid) fails alone with an error frame, and the next request is served. Ignored like the one above.
#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn cuda_survives_bad_requests() {
    if !skip::gpu_present("cuda_survives_bad_requests") {
        return;
    }
    let ids = [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198];
    let mut input = hello();
    input.extend(load_on(1, &fixture(), "cuda"));
    input.extend(generate_in(2, "a", 5, &ids, 1)); // keep 5 of an empty session
    input.extend(generate_in(3, "a", 0, &[999_999], 1)); // outside the vocabulary
    input.extend(generate_media(4, "b", 0, &[-301, -300, -302], &[0.5; 10], 1, vec![])); // 10 pixel values for a 2×2 grid
    input.extend(generate_in(5, "a", 0, &ids, 2));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    for id in [2, 3, 4] {
        assert!(frames.iter().any(|f| f.0 == kind::ERROR && f.1["id"] == id), "request {id} should fail: {frames:?}");
    }
    assert_eq!(tokens_of(&frames, 5).len(), 2, "the engine serves the next request: {frames:?}");
}

const PROMPT: [i32; 9] = [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198];

/// A device fault (here CUDA_ERROR_ILLEGAL_ADDRESS, injected by the fake GPU into the first sampling
/// kernel) is reported once, as `device_error`, to the request that met it; the engine takes no further
/// request (the CUDA context is dead: every later call would fail) and ends with status 75
/// (EXIT_DEVICE_FAULT), so the client starts a new engine.
#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn cuda_device_fault_is_reported_once_and_the_engine_exits_75() {
    const NAME: &str = "cuda_device_fault_is_reported_once_and_the_engine_exits_75";
    if !skip::gpu_present(NAME) {
        return;
    }
    let Some(fake) = fakecuda::fake_cuda(NAME) else { return };
    let _reset = fakecuda::ResetOnDrop(&fake);
    fake.fault("sample_f32", 1, 700);
    let mut input = hello();
    input.extend(load_on(1, &fixture(), "cuda"));
    input.extend(generate_in(2, "a", 0, &PROMPT, 3));
    input.extend(generate_in(3, "a", 0, &PROMPT, 3));
    input.extend(load_on(4, &fixture(), "cuda"));
    let (status, frames) = run(input);
    assert_eq!(status, ovis_engine::error::EXIT_DEVICE_FAULT, "{frames:?}");
    assert_eq!(status, 75);
    let errors: Vec<_> = frames.iter().filter(|f| f.0 == kind::ERROR).collect();
    assert_eq!(errors.len(), 1, "one error frame, for the request that met the fault: {frames:?}");
    assert_eq!(errors[0].1["id"], 2);
    assert_eq!(errors[0].1["code"], "device_error");
    let msg = errors[0].1["message"].as_str().unwrap();
    assert!(msg.contains("CUDA_ERROR_ILLEGAL_ADDRESS") && msg.contains("GPU faulted"), "{msg}");
    assert!(frames.iter().all(|f| f.1["id"] != 3 && f.1["id"] != 4), "nothing after the fault is served: {frames:?}");
}

/// Out of device memory is not a fault: the request fails with `device_error` and the engine keeps
/// serving (here the load that hit it, then a load and a generation that succeed; status 0).
#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn cuda_out_of_memory_fails_the_request_and_the_engine_keeps_serving() {
    const NAME: &str = "cuda_out_of_memory_fails_the_request_and_the_engine_keeps_serving";
    if !skip::gpu_present(NAME) {
        return;
    }
    let Some(fake) = fakecuda::fake_cuda(NAME) else { return };
    let _reset = fakecuda::ResetOnDrop(&fake);
    // The fifth allocation of the first load (its weights) fails.
    fake.fail_alloc_after(4);
    let mut input = hello();
    input.extend(load_on(1, &fixture(), "cuda"));
    input.extend(load_on(2, &fixture(), "cuda"));
    input.extend(generate_in(3, "a", 0, &PROMPT, 2));
    let (status, frames) = run(input);
    assert_eq!(status, 0, "{frames:?}");
    let e = frames.iter().find(|f| f.0 == kind::ERROR).expect("the first load fails");
    assert_eq!((e.1["id"].as_u64(), e.1["code"].as_str()), (Some(1), Some("device_error")), "{frames:?}");
    assert!(e.1["message"].as_str().unwrap().contains("OUT_OF_MEMORY"), "{frames:?}");
    assert!(frames.iter().any(|f| f.0 == kind::MODEL_LOADED && f.1["id"] == 2), "{frames:?}");
    assert_eq!(tokens_of(&frames, 3).len(), 2, "{frames:?}");
}

/// The engine binary itself: after a device fault it exits at once with status 75, without waiting for
/// the client to write again or to close stdin (which this test keeps open). The fault is injected
/// through the fake GPU's environment variable FAKECUDA_FAULT.
#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn cuda_engine_process_exits_75_right_after_a_device_fault() {
    const NAME: &str = "cuda_engine_process_exits_75_right_after_a_device_fault";
    if !skip::gpu_present(NAME) {
        return;
    }
    // Only to know that this is the fake GPU (the binary loads its own copy, configured by the env).
    if fakecuda::fake_cuda(NAME).is_none() {
        return;
    }
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovis-engine"))
        .arg("serve")
        .env("FAKECUDA_FAULT", "sample_f32:1:700")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the engine");
    let mut stdin = child.stdin.take().unwrap();
    let mut input = hello();
    input.extend(load_on(1, &fixture(), "cuda"));
    input.extend(generate_in(2, "a", 0, &PROMPT, 3));
    stdin.write_all(&input).unwrap();
    stdin.flush().unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().ok();
            panic!("the engine did not exit after the device fault (stdin still open)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(stdin);
    let (mut out, mut err) = (vec![], String::new());
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(75), "stderr:\n{err}");
    let mut r = Cursor::new(out);
    let mut frames = vec![];
    while let Ok(f) = read_frame(&mut r) {
        frames.push((f.kind, serde_json::from_slice::<serde_json::Value>(&f.header).unwrap()));
    }
    let e = frames.iter().find(|f| f.0 == kind::ERROR).unwrap_or_else(|| panic!("an error frame: {frames:?}\nstderr:\n{err}"));
    assert_eq!((e.1["id"].as_u64(), e.1["code"].as_str()), (Some(2), Some("device_error")));
    assert!(err.contains("injected fault 700") && err.contains("exiting with status 75"), "{err}");
}

/// load_model's `precision`: an unknown value is a bad_header naming the choices and loads nothing;
/// "bf16" loads and `info.kernels` says the precision and a GEMM path (which one depends on the CPU,
/// checked by test/cli/info.test.ts against /proc/cpuinfo).
#[test]
fn load_model_precision_is_checked_and_reported() {
    let dir = fixture();
    let with = |id: u64, p: &str| frame_of(kind::LOAD_MODEL, &LoadModel { id, model_dir: dir.clone(), device: "cpu".into(), lora: None, precision: Some(p.into()), weights: None }, vec![]).encode();
    let mut input = hello();
    input.extend(with(1, "fp8"));
    input.extend(generate(2, &[1, 2], 1));
    input.extend(with(3, "bf16"));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    assert_eq!(frames[1].1["code"], "bad_header");
    assert_eq!(frames[1].1["id"], 1);
    assert!(frames[1].1["message"].as_str().unwrap().contains("f32 or bf16"), "{}", frames[1].1);
    assert_eq!(frames[2].1["code"], "no_model", "the refused load loaded nothing");
    assert_eq!(frames[3].0, kind::MODEL_LOADED);
    let k = &frames[3].1["info"]["kernels"];
    assert_eq!(k["precision"], "bf16");
    assert!(["amx-bf16", "avx512-bf16", "avx512f", "avx2+fma", "portable"].contains(&k["gemm"].as_str().unwrap()), "{k}");
}
