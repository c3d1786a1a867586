//! Continuous batching on the CPU (generate::batch): the fixture's six cases run together give each
//! the ids and log-probabilities it gets alone; the batch limit holds; one session runs one request
//! at a time; and a long prompt is prefilled in chunks between the decode steps of a running stream.
use ovis_engine::protocol::*;
use ovis_engine::server::{serve_with, FrameWriter, ServeOptions};
use std::io::Cursor;
mod common;
use common::Shared;
use common::{case_pixels, fixture, fixture_dir, grids, i64s};


const CASES: [&str; 6] = ["text", "think", "image", "two_images", "video", "multiturn"];

/// hello, load_model, then `requests`; every frame the engine wrote, as (kind, header JSON).
fn run(requests: &[Vec<u8>], max_batch: usize) -> Vec<(u8, serde_json::Value)> {
    run_with(requests, ServeOptions { max_batch, kv_memory: usize::MAX, on_fault: None })
}

fn run_with(requests: &[Vec<u8>], opts: ServeOptions) -> Vec<(u8, serde_json::Value)> {
    let mut input = frame_of(kind::HELLO, &Hello { protocol: 1, client: "test".into() }, vec![]).encode();
    let load = LoadModel { id: 0, model_dir: fixture_dir().to_string_lossy().into(), device: "cpu".into(), lora: None, precision: None, weights: None };
    input.extend(frame_of(kind::LOAD_MODEL, &load, vec![]).encode());
    for r in requests {
        input.extend_from_slice(r);
    }
    let out = Shared::default();
    assert_eq!(serve_with(Cursor::new(input), FrameWriter::new(Box::new(out.clone())), opts), 0);
    let bytes = out.0.lock().unwrap().clone();
    let mut r = Cursor::new(bytes);
    let mut frames = vec![];
    while let Ok(f) = read_frame(&mut r) {
        frames.push((f.kind, serde_json::from_slice(&f.header).unwrap()));
    }
    assert!(!frames.iter().any(|f| f.0 == kind::ERROR), "no errors: {frames:?}");
    frames
}

/// A greedy request for a fixture case (its prompt ids and media), with top-3 log-probabilities.
fn case_request(id: u64, case: &str, session: &str, max_new: usize) -> Vec<u8> {
    let f = fixture();
    let ids: Vec<i32> = i64s(&f.expected, &format!("{case}.input_ids")).iter().map(|&i| i as i32).collect();
    let has_media = f.expected.contains(&format!("{case}.grid_thws"));
    let (pixels, grid_list) = if has_media { (case_pixels(&f.expected, case).0, grids(&f.expected, case)) } else { (Vec::new(), Vec::new()) };
    let kind_of = if case == "video" { "video" } else { "image" };
    let media = grid_list.iter().map(|&grid| MediaSpec { kind: kind_of.into(), grid }).collect();
    request(id, session, &ids, &pixels, media, max_new)
}

fn request(id: u64, session: &str, ids: &[i32], pixels: &[f32], media: Vec<MediaSpec>, max_new: usize) -> Vec<u8> {
    let g = Generate {
        id, session: session.into(), keep: 0, n_ids: ids.len(), media, max_new_tokens: max_new,
        sampling: Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: 0 }, stop_ids: vec![], top_logprobs: 3,
    };
    let mut body: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    body.extend(pixels.iter().flat_map(|p| p.to_le_bytes()));
    frame_of(kind::GENERATE, &g, body).encode()
}

/// (token, logprob, top logprobs) of request `id`, in order.
fn tokens(frames: &[(u8, serde_json::Value)], id: u64) -> Vec<(i64, f64, Vec<(i64, f64)>)> {
    frames
        .iter()
        .filter(|f| f.0 == kind::TOKEN && f.1["id"] == id)
        .map(|f| {
            let top = f.1["top"].as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap())).collect();
            (f.1["token"].as_i64().unwrap(), f.1["logprob"].as_f64().unwrap(), top)
        })
        .collect()
}

fn same_output(alone: &[(i64, f64, Vec<(i64, f64)>)], batched: &[(i64, f64, Vec<(i64, f64)>)], what: &str) {
    let ids = |v: &[(i64, f64, Vec<(i64, f64)>)]| v.iter().map(|t| t.0).collect::<Vec<_>>();
    assert_eq!(ids(batched), ids(alone), "{what}: the same greedy ids alone and in the batch");
    for (k, (a, b)) in alone.iter().zip(batched).enumerate() {
        assert!((a.1 - b.1).abs() <= 1e-4, "{what} token {k}: logprob {} alone, {} batched", a.1, b.1);
        for (x, y) in a.2.iter().zip(&b.2) {
            assert!(x.0 == y.0 && (x.1 - y.1).abs() <= 1e-4, "{what} token {k}: top {:?} alone, {:?} batched", a.2, b.2);
        }
    }
}

/// Requests that had started (any frame) and not yet ended (done) after each frame: the most at once.
fn most_running(frames: &[(u8, serde_json::Value)]) -> usize {
    let mut running = std::collections::HashSet::new();
    let mut most = 0;
    for (k, h) in frames {
        let Some(id) = h["id"].as_u64() else { continue };
        if id == 0 {
            continue; // load_model
        }
        if *k == kind::DONE {
            running.remove(&id);
        } else if *k == kind::TOKEN || *k == kind::PROGRESS {
            running.insert(id);
            most = most.max(running.len());
        }
    }
    most
}

#[test]
fn the_six_fixture_cases_together_answer_as_each_does_alone() {
    let max_new = 12;
    let reqs: Vec<Vec<u8>> = CASES.iter().enumerate().map(|(i, c)| case_request(i as u64 + 1, c, c, max_new)).collect();
    let together = run(&reqs, 8);
    assert_eq!(most_running(&together), 6, "all six ran at once");
    for (i, case) in CASES.iter().enumerate() {
        let id = i as u64 + 1;
        let alone = run(&[case_request(id, case, case, max_new)], 1);
        let (a, b) = (tokens(&alone, id), tokens(&together, id));
        assert_eq!(a.len(), max_new, "{case}: {max_new} tokens");
        same_output(&a, &b, case);
        // the batch's `done` says the same as the lone run's, but for timings
        let done = |fr: &[(u8, serde_json::Value)]| fr.iter().find(|f| f.0 == kind::DONE && f.1["id"] == id).unwrap().1.clone();
        for key in ["finish_reason", "prompt_tokens", "cached_tokens", "completion_tokens"] {
            assert_eq!(done(&together)[key], done(&alone)[key], "{case}: done.{key}");
        }
    }
}

#[test]
fn the_batch_limit_holds_and_a_session_runs_one_request_at_a_time() {
    let reqs: Vec<Vec<u8>> = (1..=5).map(|i| case_request(i, "text", &format!("s{i}"), 6)).collect();
    let frames = run(&reqs, 2);
    assert_eq!(most_running(&frames), 2);
    for i in 1..=5 {
        assert_eq!(tokens(&frames, i).len(), 6);
    }
    // two requests on one session: the second starts after the first is done
    let same = run(&[case_request(1, "text", "s", 6), case_request(2, "think", "s", 6)], 8);
    assert_eq!(most_running(&same), 1);
    let first_done = same.iter().position(|f| f.0 == kind::DONE && f.1["id"] == 1).unwrap();
    let second_starts = same.iter().position(|f| f.1["id"] == 2).unwrap();
    assert!(second_starts > first_done);
}

#[test]
fn a_long_prompt_is_prefilled_in_chunks_while_another_stream_keeps_decoding() {
    let f = fixture();
    let short: Vec<i32> = i64s(&f.expected, "text.input_ids").iter().map(|&i| i as i32).collect();
    // 1,500 positions: in several steps whatever the step budget (512 positions at most a step; while
    // stream 1 decodes, as many as fit the time target of generate::step_budget, from 1 up)
    let long: Vec<i32> = (0..1500).map(|i| 1000 + (i * 37) % 5000).collect();
    let frames = run(&[request(1, "a", &short, &[], vec![], 60), request(2, "b", &long, &[], vec![], 4)], 8);
    let chunks: Vec<usize> = frames.iter().enumerate().filter(|(_, f)| f.0 == kind::PROGRESS && f.1["id"] == 2 && f.1["phase"] == "prefill").map(|(k, _)| k).collect();
    assert!(chunks.len() >= 3, "the long prompt took several steps: {}", chunks.len());
    // Every step that prefilled a chunk of stream 2 while stream 1 was running also gave stream 1 a
    // token: between two consecutive chunks (and between the last chunk and stream 2's first token)
    // there is a token of stream 1, until stream 1 is done.
    let done_1 = frames.iter().position(|f| f.0 == kind::DONE && f.1["id"] == 1).unwrap();
    let first_token_2 = frames.iter().position(|f| f.0 == kind::TOKEN && f.1["id"] == 2).unwrap();
    let mut ends: Vec<usize> = chunks[1..].to_vec();
    ends.push(first_token_2);
    let mut checked = 0;
    for (&a, &b) in chunks.iter().zip(&ends) {
        if b > done_1 {
            break;
        }
        assert!(frames[a..b].iter().any(|f| f.0 == kind::TOKEN && f.1["id"] == 1), "stream 1 got no token in the step that prefilled frames {a}..{b}");
        checked += 1;
    }
    assert!(checked >= 2, "stream 1 decoded beside at least two prefill steps ({checked})");
    // and stream 1's answer is the one it gives alone
    let alone = run(&[request(1, "a", &short, &[], vec![], 60)], 1);
    same_output(&tokens(&alone, 1), &tokens(&frames, 1), "the decoding stream");
}

#[test]
fn an_evicted_session_is_rebuilt_from_its_inputs_and_answers_as_if_it_had_been_kept() {
    let f = fixture();
    let prompt: Vec<i32> = i64s(&f.expected, "text.input_ids").iter().map(|&i| i as i32).collect();
    let cfg = &f.cfg.llm;
    let per_position = (2 * cfg.layers * cfg.kv_heads * cfg.head_dim + cfg.hidden) * 4;
    let need = (prompt.len() + 8) * per_position;
    let mut reqs: Vec<Vec<u8>> = ["a", "b", "c", "d"].iter().enumerate().map(|(i, s)| request(i as u64 + 1, s, &prompt, &[], vec![], 8)).collect();
    // session a again, keeping its prompt, with a new turn
    let turn: Vec<i32> = vec![151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198];
    let mut again = Generate {
        id: 5, session: "a".into(), keep: prompt.len(), n_ids: turn.len(), media: vec![], max_new_tokens: 8,
        sampling: Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: 0 }, stop_ids: vec![], top_logprobs: 3,
    };
    let body: Vec<u8> = turn.iter().flat_map(|i| i.to_le_bytes()).collect();
    reqs.push(frame_of(kind::GENERATE, &again, body.clone()).encode());
    // room for three requests' caches, not four: the fourth evicts the least recently used (a)
    let tight = run_with(&reqs, ServeOptions { max_batch: 1, kv_memory: 3 * need + need / 2, on_fault: None });
    let roomy = run_with(&reqs, ServeOptions { max_batch: 1, kv_memory: usize::MAX, on_fault: None });
    let done = |fr: &[(u8, serde_json::Value)], id: u64| fr.iter().find(|f| f.0 == kind::DONE && f.1["id"] == id).unwrap().1.clone();
    assert_eq!(done(&roomy, 5)["cached_tokens"], prompt.len(), "kept: the prompt is reused");
    assert_eq!(done(&tight, 5)["cached_tokens"], 0, "evicted: nothing reused, the prompt prefilled again");
    same_output(&tokens(&roomy, 5), &tokens(&tight, 5), "the continued conversation");
    // the rebuild is reported as prefill progress over the kept and the new positions
    let last = tight.iter().filter(|f| f.0 == kind::PROGRESS && f.1["id"] == 5).last().unwrap().1.clone();
    assert_eq!(last["total"], prompt.len() + turn.len());
    // keep beyond what the session ever held is still a bad request
    again.id = 6;
    again.keep = 10_000;
    let input = vec![request(1, "a", &prompt, &[], vec![], 2), frame_of(kind::GENERATE, &again, body).encode()];
    let mut hello = frame_of(kind::HELLO, &Hello { protocol: 1, client: "test".into() }, vec![]).encode();
    hello.extend(frame_of(kind::LOAD_MODEL, &LoadModel { id: 0, model_dir: fixture_dir().to_string_lossy().into(), device: "cpu".into(), lora: None, precision: None, weights: None }, vec![]).encode());
    for r in input {
        hello.extend(r);
    }
    let out = Shared::default();
    serve_with(Cursor::new(hello), FrameWriter::new(Box::new(out.clone())), ServeOptions { max_batch: 1, kv_memory: 1, on_fault: None });
    let bytes = out.0.lock().unwrap().clone();
    let mut r = Cursor::new(bytes);
    let mut errors = vec![];
    while let Ok(f) = read_frame(&mut r) {
        if f.kind == kind::ERROR {
            errors.push(serde_json::from_slice::<serde_json::Value>(&f.header).unwrap());
        }
    }
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "bad_request");
}
