//! What fuzzing the protocol found (issue 10, item 4), each pinned by the frame that showed it:
//! sampling values that overflow (a tiny repetition penalty, a tiny temperature), media grids whose
//! t·h·w wraps, JSON arrays where objects are documented; and what `shutdown` and a failed
//! `load_model` do (docs/protocol.md). Most tests drive the request loop (`serve`: reader, worker,
//! CPU model) with frames; the last one sends every finding's frame to the real engine process.
use ovis_engine::generate::sampler::{Sampler, SamplingParams};
use ovis_engine::generate::validate::{media_patches, MAX_MEDIA_PATCHES};
use ovis_engine::model::config::ModelConfig;
use ovis_engine::protocol::*;
use ovis_engine::server::{serve, FrameWriter};
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
mod common;
use common::Shared;


fn fixture() -> String {
    std::env::var("OVIS_FIXTURE_DIR").unwrap_or_else(|_| format!("{}/../test/fixtures/tiny-ovis2.5", env!("CARGO_MANIFEST_DIR")))
}

type Frames = Vec<(u8, serde_json::Value)>;

fn decode_all(bytes: Vec<u8>) -> Frames {
    let mut r = Cursor::new(bytes);
    let mut frames = vec![];
    loop {
        match read_frame(&mut r) {
            Ok(f) => frames.push((f.kind, serde_json::from_slice(&f.header).unwrap_or_else(|e| panic!("engine header is not JSON ({e}): {}", String::from_utf8_lossy(&f.header))))),
            Err(ReadError::Eof) => break,
            Err(e) => panic!("engine wrote a bad frame: {e:?}"),
        }
    }
    frames
}

/// Runs the request loop over `input`; returns (exit status, every frame written).
fn run(input: Vec<u8>) -> (i32, Frames) {
    let out = Shared::default();
    let status = serve(Cursor::new(input), FrameWriter::new(Box::new(out.clone())));
    let bytes = out.0.lock().unwrap().clone();
    (status, decode_all(bytes))
}

/// A frame with this header text, as a fuzzer writes it.
fn raw(kind: u8, header: &str, body: Vec<u8>) -> Vec<u8> {
    Frame::new(kind, header.as_bytes().to_vec(), body).encode()
}

fn hello() -> Vec<u8> {
    raw(kind::HELLO, r#"{"protocol":1,"client":"fuzz"}"#, vec![])
}

fn load(id: u64) -> Vec<u8> {
    frame_of(kind::LOAD_MODEL, &LoadModel { id, model_dir: fixture(), device: "cpu".into(), lora: None, precision: None, weights: None }, vec![]).encode()
}

const PROMPT: [i32; 9] = [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198];

fn ids_body(ids: &[i32]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// A generate frame for PROMPT with this `sampling` object (JSON text), 4 new tokens, 2 top logprobs.
fn generate_with(id: u64, session: &str, sampling: &str) -> Vec<u8> {
    let h = format!(r#"{{"id":{id},"session":"{session}","keep":0,"n_ids":{},"media":[],"max_new_tokens":4,"sampling":{sampling},"stop_ids":[],"top_logprobs":2}}"#, PROMPT.len());
    raw(kind::GENERATE, &h, ids_body(&PROMPT))
}

const GREEDY: &str = r#"{"temperature":0,"top_k":0,"top_p":1,"repetition_penalty":1,"seed":0}"#;

fn of(frames: &Frames, id: u64) -> Vec<&(u8, serde_json::Value)> {
    frames.iter().filter(|f| f.1["id"] == id).collect()
}

fn tokens_of(frames: &Frames, id: u64) -> Vec<u64> {
    frames.iter().filter(|f| f.0 == kind::TOKEN && f.1["id"] == id).map(|f| f.1["token"].as_u64().unwrap()).collect()
}

/// The one error frame answering request `id` (and nothing else for it).
fn error_of(frames: &Frames, id: u64) -> serde_json::Value {
    let mine = of(frames, id);
    assert_eq!(mine.len(), 1, "request {id}: one reply expected, got {mine:?}");
    assert_eq!(mine[0].0, kind::ERROR, "request {id}: an error expected, got {mine:?}");
    mine[0].1.clone()
}

/// Every number in every frame is a JSON number (serde_json writes a non-finite f32 as null).
fn assert_no_null_numbers(frames: &Frames) {
    for (k, h) in frames {
        if *k == kind::TOKEN {
            assert!(h["logprob"].is_number(), "token frame with a non-number logprob: {h}");
            for pair in h["top"].as_array().unwrap() {
                assert!(pair[1].is_number(), "token frame with a non-number top logprob: {h}");
            }
        }
    }
}

// ---- Finding 1: repetition_penalty 1e-45 made z/ρ overflow and logprobs NaN (sent as null).

#[test]
fn a_repetition_penalty_outside_its_range_is_a_bad_request_naming_it() {
    let mut input = hello();
    input.extend(load(1));
    input.extend(generate_with(2, "a", r#"{"temperature":0,"top_k":0,"top_p":1,"repetition_penalty":1e-45,"seed":0}"#));
    input.extend(generate_with(3, "b", r#"{"temperature":0,"top_k":0,"top_p":1,"repetition_penalty":1000,"seed":0}"#));
    // The ends of the documented range are served.
    input.extend(generate_with(4, "c", r#"{"temperature":0,"top_k":0,"top_p":1,"repetition_penalty":0.01,"seed":0}"#));
    input.extend(generate_with(5, "d", r#"{"temperature":0,"top_k":0,"top_p":1,"repetition_penalty":100,"seed":0}"#));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    assert_no_null_numbers(&frames);
    for id in [2, 3] {
        let e = error_of(&frames, id);
        assert_eq!(e["code"], "bad_request", "{e}");
        assert!(e["message"].as_str().unwrap().contains("repetition_penalty"), "{e}");
    }
    for id in [4, 5] {
        assert_eq!(tokens_of(&frames, id).len(), 4, "request {id}: {frames:?}");
    }
}

#[test]
fn a_temperature_above_its_range_is_a_bad_request_naming_it() {
    let mut input = hello();
    input.extend(load(1));
    input.extend(generate_with(2, "a", r#"{"temperature":1e30,"top_k":0,"top_p":1,"repetition_penalty":1,"seed":0}"#));
    let (_, frames) = run(input);
    let e = error_of(&frames, 2);
    assert_eq!(e["code"], "bad_request");
    assert!(e["message"].as_str().unwrap().contains("temperature"), "{e}");
}

#[test]
fn a_non_finite_logprob_never_reaches_the_wire() {
    let tok = Token { id: 1, token: 7, logprob: f32::NAN, top: vec![(7, f32::NAN), (8, f32::NEG_INFINITY), (9, f32::INFINITY)] };
    let frame = frame_of(kind::TOKEN, &tok, vec![]);
    let text = String::from_utf8(frame.header.clone()).unwrap();
    assert!(!text.contains("null"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let all: Vec<f64> = std::iter::once(v["logprob"].as_f64().unwrap()).chain(v["top"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap())).collect();
    assert!(all.iter().all(|x| x.is_finite() && *x <= 0.0), "{text}");
    // Finite values are sent as they are.
    let tok = Token { id: 1, token: 7, logprob: -0.5, top: vec![(7, -0.5), (8, -1.25)] };
    assert_eq!(String::from_utf8(frame_of(kind::TOKEN, &tok, vec![]).header).unwrap(), r#"{"id":1,"token":7,"logprob":-0.5,"top":[[7,-0.5],[8,-1.25]]}"#);
}

// ---- Finding 2: temperature 1e-38 made logits/T overflow; the sampler drew the last id every step.

#[test]
fn the_sampler_treats_a_temperature_below_the_threshold_as_greedy() {
    // (the sampler alone: what the fuzzer's temperature did to it)
    let logits: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
    let best = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32;
    for t in [1e-38f32, 1e-30, 1e-6, GREEDY_TEMPERATURE / 2.0] {
        let mut s = Sampler::new(SamplingParams { temperature: t, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: 1 });
        for _ in 0..3 {
            assert_eq!(s.sample(&mut logits.clone(), &[], 0).id, best, "temperature {t}");
        }
    }
}

#[test]
fn a_tiny_temperature_is_read_as_greedy_for_every_backend() {
    let h = r#"{"id":2,"session":"a","n_ids":1,"max_new_tokens":1,"sampling":{"temperature":1e-38,"seed":1}}"#;
    let g: Generate = parse_header(&Frame::new(kind::GENERATE, h.as_bytes().to_vec(), vec![])).unwrap();
    assert_eq!(g.sampling.temperature, 0.0, "below the threshold: greedy, the same as 0");
    let h = r#"{"id":2,"session":"a","n_ids":1,"max_new_tokens":1,"sampling":{"temperature":0.001,"seed":1}}"#;
    let g: Generate = parse_header(&Frame::new(kind::GENERATE, h.as_bytes().to_vec(), vec![])).unwrap();
    assert_eq!(g.sampling.temperature, 0.001, "at or above the threshold: as sent");
}

#[test]
fn a_tiny_temperature_generates_the_greedy_answer() {
    let mut input = hello();
    input.extend(load(1));
    input.extend(generate_with(2, "a", GREEDY));
    input.extend(generate_with(3, "b", r#"{"temperature":1e-38,"top_k":0,"top_p":1,"repetition_penalty":1,"seed":1}"#));
    let (_, frames) = run(input);
    let greedy = tokens_of(&frames, 2);
    assert_eq!(greedy.len(), 4);
    assert_eq!(tokens_of(&frames, 3), greedy, "{frames:?}");
}

// ---- Finding 3: grids whose t·h·w wraps to 0 were served without their image.

fn cfg() -> ModelConfig {
    ModelConfig::from_dir(Path::new(&fixture())).unwrap()
}

#[test]
fn grids_that_overflow_are_refused_naming_the_value() {
    let cfg = cfg();
    let two32 = 1usize << 32;
    for (kind, grid, named) in [("image", [1, two32, two32], "4294967296"), ("video", [65536, 1 << 24, 1 << 24], "65536"), ("image", [1, 2, 2 * MAX_MEDIA_PATCHES], "699050")] {
        let media = vec![MediaSpec { kind: kind.into(), grid }];
        let e = media_patches(&media, &cfg).expect_err(&format!("{grid:?} must be refused"));
        assert_eq!(e.code(), "bad_request");
        assert!(e.to_string().contains(named), "{grid:?}: {e}");
    }
    // Each grid fits, together they would not fit in one frame.
    let half = MAX_MEDIA_PATCHES / 2 + 2;
    let big = MediaSpec { kind: "video".into(), grid: [half / 4, 2, 2] };
    let e = media_patches(&[big.clone(), big.clone(), big], &cfg).expect_err("the sum is over the limit");
    assert!(e.to_string().contains(&MAX_MEDIA_PATCHES.to_string()), "{e}");
    // The largest grid one frame can carry is fine.
    assert_eq!(media_patches(&[MediaSpec { kind: "image".into(), grid: [1, 2, 174762] }], &cfg).unwrap(), vec![349524]);
}

#[test]
fn a_wrapping_grid_is_a_bad_request_not_a_request_without_its_image() {
    let ids = [151644, 872, 198, -301, -302, 198, 3838, 151645, 198, 151644, 77091, 198];
    let frame = |id: u64, media: &str| {
        let h = format!(r#"{{"id":{id},"session":"s{id}","keep":0,"n_ids":{},"media":[{media}],"max_new_tokens":1,"sampling":{GREEDY},"stop_ids":[],"top_logprobs":0}}"#, ids.len());
        raw(kind::GENERATE, &h, ids_body(&ids))
    };
    let mut input = hello();
    input.extend(load(1));
    input.extend(frame(2, r#"{"kind":"image","grid":[1,4294967296,4294967296]}"#));
    input.extend(frame(3, r#"{"kind":"video","grid":[65536,16777216,16777216]}"#));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    for (id, named) in [(2, "4294967296"), (3, "65536")] {
        let e = error_of(&frames, id);
        assert_eq!(e["code"], "bad_request", "{e}");
        assert!(e["message"].as_str().unwrap().contains(named), "{e}");
    }
}

// ---- Finding 4: JSON arrays were accepted where objects are documented.

#[test]
fn arrays_where_objects_are_documented_are_bad_headers() {
    let mut input = hello();
    input.extend(load(1));
    // the sampling object as an (empty) array: served greedy before
    input.extend(generate_with(2, "a", "[]"));
    input.extend(generate_with(3, "a", "[0.7,0,1,1,5]"));
    // a media entry as an array
    let ids = [151644, -301, -300, -302, 198];
    let mut body = ids_body(&ids);
    body.extend((0..4 * 768).flat_map(|i| ((i % 255) as f32 / 127.5 - 1.0).to_le_bytes()));
    let h = format!(r#"{{"id":4,"session":"m","n_ids":5,"media":[["image",[1,2,2]]],"max_new_tokens":1,"sampling":{GREEDY}}}"#);
    input.extend(raw(kind::GENERATE, &h, body.clone()));
    // a whole generate header as an array
    input.extend(raw(kind::GENERATE, &format!(r#"[5,"a",0,9,[],4,{GREEDY},[],0]"#), ids_body(&PROMPT)));
    // load_model, cancel and close_session headers as arrays
    input.extend(raw(kind::LOAD_MODEL, &format!(r#"[6,{:?},"cpu"]"#, fixture()), vec![]));
    input.extend(raw(kind::CANCEL, "[7]", vec![]));
    input.extend(raw(kind::CLOSE_SESSION, r#"["a"]"#, vec![]));
    // the same media entry as an object is served
    let h = format!(r#"{{"id":8,"session":"m","n_ids":5,"media":[{{"kind":"image","grid":[1,2,2]}}],"max_new_tokens":1,"sampling":{GREEDY}}}"#);
    input.extend(raw(kind::GENERATE, &h, body));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    for id in [2, 3, 4] {
        let e = error_of(&frames, id);
        assert_eq!(e["code"], "bad_header", "{e}");
        assert!(e["message"].as_str().unwrap().contains("object"), "{e}");
    }
    assert!(of(&frames, 5).is_empty() && of(&frames, 6).is_empty(), "array headers are answered with id null: {frames:?}");
    let anonymous: Vec<_> = frames.iter().filter(|f| f.0 == kind::ERROR && f.1["id"].is_null()).collect();
    assert_eq!(anonymous.len(), 4, "generate, load_model, cancel and close_session headers as arrays: {frames:?}");
    assert!(anonymous.iter().all(|f| f.1["code"] == "bad_header" && f.1["message"].as_str().unwrap().contains("object")), "{anonymous:?}");
    assert!(!frames.iter().any(|f| f.0 == kind::SESSION_CLOSED), "{frames:?}");
    assert_eq!(tokens_of(&frames, 8).len(), 1, "{frames:?}");
}

#[test]
fn a_hello_header_as_an_array_is_not_a_greeting() {
    let mut input = raw(kind::HELLO, r#"[1,"fuzz"]"#, vec![]);
    input.extend(hello());
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    assert_eq!(frames[0].0, kind::ERROR);
    assert_eq!(frames[0].1["code"], "bad_header");
    assert_eq!(frames[1].0, kind::HELLO_OK, "the object form still greets: {frames:?}");
}

// ---- Finding 5: what shutdown and a failed load_model do (docs/protocol.md states exactly this).

#[test]
fn shutdown_answers_every_request_received_before_it_and_reads_nothing_after() {
    let mut input = hello();
    input.extend(load(1));
    input.extend(generate_with(2, "a", GREEDY));
    input.extend(generate_with(3, "b", GREEDY));
    input.extend(raw(kind::SHUTDOWN, "{}", vec![]));
    input.extend(generate_with(4, "c", GREEDY));
    let (status, frames) = run(input);
    assert_eq!(status, 0);
    for id in [2, 3] {
        let done = of(&frames, id).into_iter().find(|f| f.0 == kind::DONE).unwrap_or_else(|| panic!("request {id} queued before shutdown is answered: {frames:?}"));
        assert_eq!(done.1["finish_reason"], "length");
    }
    assert!(of(&frames, 4).is_empty(), "a frame after shutdown is not read: {frames:?}");
}

#[test]
fn a_failed_load_drops_the_loaded_model_but_a_bad_device_does_not() {
    let mut input = hello();
    input.extend(load(1));
    input.extend(generate_with(2, "a", GREEDY));
    // a device that does not parse fails before anything is dropped
    input.extend(frame_of(kind::LOAD_MODEL, &LoadModel { id: 3, model_dir: fixture(), device: "tpu".into(), lora: None, precision: None, weights: None }, vec![]).encode());
    input.extend(generate_with(4, "a", GREEDY));
    // a model directory that cannot be loaded: the old model is already gone
    input.extend(frame_of(kind::LOAD_MODEL, &LoadModel { id: 5, model_dir: "/nonexistent/model".into(), device: "cpu".into(), lora: None, precision: None, weights: None }, vec![]).encode());
    input.extend(generate_with(6, "a", GREEDY));
    let (_, frames) = run(input);
    assert_eq!(tokens_of(&frames, 2).len(), 4);
    assert_eq!(error_of(&frames, 3)["code"], "device_error");
    assert_eq!(tokens_of(&frames, 4).len(), 4, "the model survived the bad device: {frames:?}");
    assert_eq!(error_of(&frames, 5)["code"], "model_error");
    assert_eq!(error_of(&frames, 6)["code"], "no_model", "the failed load dropped the model");
}

// ---- Every finding's frame, sent to the real engine process at once.

#[test]
fn the_engine_process_answers_every_fuzz_frame_once_and_keeps_serving() {
    let mut input = hello();
    input.extend(load(1));
    input.extend(generate_with(2, "a", r#"{"temperature":0,"top_k":0,"top_p":1,"repetition_penalty":1e-45,"seed":0}"#));
    input.extend(generate_with(3, "b", r#"{"temperature":1e-38,"top_k":0,"top_p":1,"repetition_penalty":1,"seed":1}"#));
    let ids = [151644, 872, 198, -301, -302, 198];
    let h = r#"{"id":4,"session":"c","n_ids":6,"media":[{"kind":"image","grid":[1,4294967296,4294967296]}],"max_new_tokens":1,"sampling":{}}"#;
    input.extend(raw(kind::GENERATE, h, ids_body(&ids)));
    input.extend(generate_with(5, "d", "[]"));
    input.extend(generate_with(6, "e", GREEDY));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovis-engine")).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start ovis-engine");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
        // closing stdin ends the engine once it has answered everything
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let frames = decode_all(out);
    assert_no_null_numbers(&frames);
    assert_eq!(error_of(&frames, 2)["code"], "bad_request");
    assert_eq!(tokens_of(&frames, 3), tokens_of(&frames, 6), "temperature 1e-38 is greedy");
    assert_eq!(error_of(&frames, 4)["code"], "bad_request");
    assert_eq!(error_of(&frames, 5)["code"], "bad_header");
    for id in [3, 6] {
        let mine = of(&frames, id);
        assert_eq!(mine.iter().filter(|f| f.0 == kind::DONE || f.0 == kind::ERROR).count(), 1, "request {id}: one terminal reply: {mine:?}");
        assert_eq!(mine.last().unwrap().0, kind::DONE);
    }
}
