//! Golden frames shared with the CLI (test/protocol/golden.test.ts): the engine decodes every file
//! and encodes the engine→client messages to exactly the file's bytes.
use ovis_engine::protocol::*;
use std::path::PathBuf;

fn golden(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/protocol/golden").join(format!("{name}.bin"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn decode(name: &str) -> Frame {
    let bytes = golden(name);
    let mut r = std::io::Cursor::new(bytes);
    let f = read_frame(&mut r).unwrap_or_else(|_| panic!("{name} decodes"));
    assert!(matches!(read_frame(&mut r), Err(ReadError::Eof)), "{name} holds exactly one frame");
    f
}

#[test]
fn client_frames_decode_to_typed_requests() {
    let h: Hello = parse_header(&decode("hello")).unwrap();
    assert_eq!(h, Hello { protocol: 1, client: "ovis/0.1.0".into() });
    let l: LoadModel = parse_header(&decode("load_model")).unwrap();
    assert_eq!((l.id, l.model_dir.as_str(), l.device.as_str(), l.lora.as_deref()), (1, "/models/ovis", "auto", None));
    let l: LoadModel = parse_header(&decode("load_model_lora")).unwrap();
    assert_eq!((l.model_dir.as_str(), l.lora.as_deref(), l.weights.as_deref()), ("/models/ovis", Some("/adapters/mine"), None));
    let l: LoadModel = parse_header(&decode("load_model_int8")).unwrap();
    assert_eq!((l.device.as_str(), l.weights.as_deref()), ("cpu", Some("int8")));
    let f = decode("generate_text");
    assert_eq!(f.kind, kind::GENERATE);
    let g: Generate = parse_header(&f).unwrap();
    assert_eq!((g.id, g.session.as_str(), g.keep, g.n_ids, g.max_new_tokens, g.top_logprobs), (2, "s1", 0, 3, 8, 2));
    assert_eq!(g.sampling.temperature, 0.0);
    assert_eq!(g.stop_ids, vec![151645, 151643]);
    let ids: Vec<i32> = f.body.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(ids, vec![151644, 872, 198]);
    let f = decode("generate_image");
    let g: Generate = parse_header(&f).unwrap();
    assert_eq!(g.media, vec![MediaSpec { kind: "image".into(), grid: [1, 2, 2] }]);
    assert_eq!((g.keep, g.sampling.top_k, g.sampling.seed), (5, 20, 42));
    assert_eq!(g.sampling.repetition_penalty, 1.25);
    assert_eq!(f.body.len(), 4 * 4 + 4 * 768 * 4);
    let px = f32::from_le_bytes(f.body[16 + 4..16 + 8].try_into().unwrap());
    assert_eq!(px, -0.75);
    let c: IdOnly = parse_header(&decode("cancel")).unwrap();
    assert_eq!(c.id, 2);
    let s: SessionRef = parse_header(&decode("close_session")).unwrap();
    assert_eq!(s.session, "s1");
    assert_eq!(decode("shutdown").kind, kind::SHUTDOWN);
}

#[test]
fn engine_messages_encode_to_golden_bytes() {
    let hello_ok = HelloOk { protocol: 1, engine: "0.1.0".into(), backend: "cpu".into(), device: "test cpu, 2 threads".into(), threads: 2 };
    assert_eq!(frame_of(kind::HELLO_OK, &hello_ok, vec![]).encode(), golden("hello_ok"));
    let tok = Token { id: 2, token: 66480, logprob: -0.5, top: vec![(66480, -0.5), (61682, -1.25)] };
    assert_eq!(frame_of(kind::TOKEN, &tok, vec![]).encode(), golden("token"));
    let timings = Timings { vision_ms: 0.0, prefill_ms: 1.5, first_token_ms: 2.5, decode_ms: 10.25, total_ms: 12.75 };
    let done = Done { id: 2, finish_reason: "length".into(), prompt_tokens: 3, cached_tokens: 0, completion_tokens: 8, timings };
    assert_eq!(frame_of(kind::DONE, &done, vec![]).encode(), golden("done"));
    let progress = Progress { id: 2, phase: "prefill".into(), done: 512, total: 1500, elapsed_ms: None };
    assert_eq!(frame_of(kind::PROGRESS, &progress, vec![]).encode(), golden("progress"));
    let vision = Progress { id: 2, phase: "vision".into(), done: 3, total: 27, elapsed_ms: Some(4512.25) };
    assert_eq!(frame_of(kind::PROGRESS, &vision, vec![]).encode(), golden("progress_vision"));
    let closed = SessionRef { session: "s1".into() };
    assert_eq!(frame_of(kind::SESSION_CLOSED, &closed, vec![]).encode(), golden("session_closed"));
    let err = ErrorMsg { id: Some(2), code: "bad_request".into(), message: "ids[0] = -7 is not a token id".into() };
    assert_eq!(frame_of(kind::ERROR, &err, vec![]).encode(), golden("error"));
    let err = ErrorMsg { id: None, code: "unknown_kind".into(), message: "unknown frame kind 0x7f".into() };
    assert_eq!(frame_of(kind::ERROR, &err, vec![]).encode(), golden("error_no_id"));
}
