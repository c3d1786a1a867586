//! How many prompt positions one batch step may prefill (chunked prefill), from what the steps cost
//! on this device. A fixed budget (512 positions) makes every decoding stream wait for a whole chunk:
//! on 2 CPU cores that is many seconds per token. Here the chunk is sized so that a step that
//! prefills costs about `TARGET_STEP_RATIO` times a decode-only step of the same streams, so their
//! gaps between tokens stay within a small multiple of their usual step; the prompt still advances
//! by at least `MIN_POSITIONS` a step, and by the whole `MAX_POSITIONS` when nothing decodes.
//!
//! Model (seconds, per step): cost(d decode rows, c prefill positions) ≈ decode(d) + c · p, where
//! decode(d) is measured from steps without prefill (one figure per d) and p, the seconds per
//! prefilled position, from steps with prefill as Σ(cost − decode(d)) / Σ c over recent steps (older
//! steps weigh less; steps with more positions weigh more, so one noisy single-position step cannot
//! swing it). Until p is known the chunk starts at `MIN_POSITIONS`, and it grows at most twofold per
//! step (a wrong low estimate of p costs one step of twice the target, not one of 512 positions).
//!
//! decode(d) needs steps without prefill, which a long prompt beside the streams never leaves: so a
//! step with d decode rows prefills nothing (a probe) when d has no figure yet, and again after
//! `REPROBE_AFTER` prefilling steps (the device's load changes); the prompt loses one step in that many.

/// A prefilling step should take about this many times the decode-only step: the streams' gap
/// target is 3× their step (issue 10), and 1.5× leaves room for the model's error and for the
/// device's load changing between probes (on a shared 2-core machine, a 2× target gave median gaps
/// of 3× when the load rose).
pub const TARGET_STEP_RATIO: f64 = 1.5;
/// The prompt advances by at least this many positions per step, however slow the device.
pub const MIN_POSITIONS: usize = 1;
/// The most positions per step (the chunk of the single-request path, `run::PREFILL_CHUNK`).
pub const MAX_POSITIONS: usize = crate::generate::run::PREFILL_CHUNK;
/// Weight of the newest step in the running figures (exponential decay of older ones).
const NEW_WEIGHT: f64 = 0.25;
/// Prefilling steps beside decode rows between two decode-only probes of the same row count.
pub const REPROBE_AFTER: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct StepBudget {
    /// Seconds of a decode-only step, indexed by its number of decode rows (None: not seen yet).
    decode: Vec<Option<f64>>,
    /// Decayed sums of (step seconds − decode(d)) and of positions, over steps that prefilled.
    extra_s: f64,
    positions: f64,
    /// Positions prefilled by the last step that also decoded (the cap on growth is twice this).
    last: usize,
    /// Steps that prefilled beside decode rows since the last decode-only step.
    since_probe: usize,
}

impl StepBudget {
    pub fn new() -> StepBudget {
        StepBudget::default()
    }

    /// Prompt positions the next step may prefill (shared by every prompt waiting) beside `decoding`
    /// decode rows; 0 for a probe (see the module's comment).
    pub fn positions(&self, decoding: usize) -> usize {
        if decoding == 0 {
            return MAX_POSITIONS;
        }
        if !matches!(self.decode.get(decoding), Some(Some(_))) || self.since_probe >= REPROBE_AFTER {
            return 0;
        }
        match (self.decode_seconds(decoding), self.seconds_per_position()) {
            (Some(d), Some(p)) => {
                // (+1e-9: 0.5 · 0.4 / 0.01 is 19.999… in floating point; a whole fit is meant)
                let fit = ((TARGET_STEP_RATIO - 1.0) * d / p + 1e-9).floor();
                let fit = if fit.is_finite() && fit < MAX_POSITIONS as f64 { fit as usize } else { MAX_POSITIONS };
                fit.min(2 * self.last.max(MIN_POSITIONS)).clamp(MIN_POSITIONS, MAX_POSITIONS)
            }
            _ => MIN_POSITIONS,
        }
    }

    /// What a step cost: `decoding` decode rows and `prefilled` prompt positions in `seconds`.
    pub fn record(&mut self, decoding: usize, prefilled: usize, seconds: f64) {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return;
        }
        if prefilled == 0 {
            if decoding == 0 {
                return;
            }
            if self.decode.len() <= decoding {
                self.decode.resize(decoding + 1, None);
            }
            let slot = &mut self.decode[decoding];
            *slot = Some(slot.map_or(seconds, |old| old + NEW_WEIGHT * (seconds - old)));
            self.since_probe = 0;
            return;
        }
        if decoding > 0 {
            self.last = prefilled;
            self.since_probe += 1;
        }
        let base = if decoding == 0 { Some(0.0) } else { self.decode_seconds(decoding) };
        // Without a decode figure for these rows the step cannot be split into decode and prefill.
        let Some(base) = base else { return };
        // Noise can make the difference negative; a position is never free.
        let extra = (seconds - base).max(0.0);
        self.extra_s = (1.0 - NEW_WEIGHT) * self.extra_s + extra;
        self.positions = (1.0 - NEW_WEIGHT) * self.positions + prefilled as f64;
    }

    /// A decode-only step's seconds with `d` rows: measured for d, else for the nearest d measured
    /// (scaled by neither: a few rows more or less cost about the same while decode is memory-bound).
    pub fn decode_seconds(&self, d: usize) -> Option<f64> {
        if let Some(Some(s)) = self.decode.get(d) {
            return Some(*s);
        }
        (1..self.decode.len()).filter_map(|i| self.decode[i].map(|s| (i.abs_diff(d), s))).min_by_key(|&(dist, _)| dist).map(|(_, s)| s)
    }

    /// Seconds per prefilled position, once some step has prefilled.
    pub fn seconds_per_position(&self) -> Option<f64> {
        (self.positions > 0.0).then(|| (self.extra_s / self.positions).max(1e-9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_decoding_takes_the_whole_chunk() {
        let b = StepBudget::new();
        assert_eq!(b.positions(0), MAX_POSITIONS);
    }

    #[test]
    fn unmeasured_device_probes_then_starts_at_the_floor() {
        let mut b = StepBudget::new();
        assert_eq!(b.positions(4), 0, "no decode figure for 4 rows: a decode-only step measures it");
        b.record(4, 0, 0.3);
        assert_eq!(b.positions(4), MIN_POSITIONS, "decode known, per-position cost not yet");
        assert_eq!(b.positions(5), 0, "5 rows have no figure of their own");
    }

    #[test]
    fn a_long_prefill_is_interrupted_by_a_probe_every_so_many_steps() {
        let mut b = StepBudget::new();
        b.record(2, 0, 0.2);
        let grants: Vec<usize> = (0..2 * REPROBE_AFTER + 2)
            .map(|_| {
                let g = b.positions(2);
                b.record(2, g, 0.2 + g as f64 * 0.01);
                g
            })
            .collect();
        assert!(grants[..REPROBE_AFTER].iter().all(|&g| g > 0), "{grants:?}");
        assert_eq!(grants[REPROBE_AFTER], 0, "{grants:?}");
        assert!(grants[REPROBE_AFTER + 1..2 * REPROBE_AFTER + 1].iter().all(|&g| g > 0), "{grants:?}");
        assert_eq!(grants[2 * REPROBE_AFTER + 1], 0, "{grants:?}");
        assert_eq!(grants[REPROBE_AFTER - 1], fit(0.2, 0.01), "0.5 · 0.2 / 0.01");
    }

    /// Positions that fit beside a decode step of `decode` seconds at `p` seconds a position.
    fn fit(decode: f64, p: f64) -> usize {
        ((TARGET_STEP_RATIO - 1.0) * decode / p + 1e-9).floor() as usize
    }

    /// Steps of a device where decode(8) = 0.4 s and a position costs 0.01 s: the grants.
    fn run(b: &mut StepBudget, steps: usize, per_position: f64) -> Vec<usize> {
        (0..steps)
            .map(|_| {
                let g = b.positions(8);
                b.record(8, g, 0.4 + g as f64 * per_position);
                g
            })
            .collect()
    }

    #[test]
    fn chunk_fits_the_target_step_and_grows_at_most_twofold() {
        let mut b = StepBudget::new();
        b.record(8, 0, 0.4); // decode-only step with 8 rows: 0.4 s
        // (1.5 − 1) · 0.4 / 0.01 = 20 positions fit; from the floor (1), growth is capped at 2, 4, 8, …
        assert_eq!(fit(0.4, 0.01), 20);
        assert_eq!(run(&mut b, 8, 0.01), [1, 2, 4, 8, 16, 20, 20, 20]);
    }

    #[test]
    fn a_slow_device_gets_the_floor_and_a_fast_one_the_cap() {
        let mut slow = StepBudget::new();
        slow.record(1, 0, 0.2);
        slow.record(1, 4, 2.2); // 0.5 s per position: 0.2 s of room fits none
        assert_eq!(slow.positions(1), MIN_POSITIONS);
        slow.record(1, 1, 0.7);
        assert_eq!(slow.positions(1), MIN_POSITIONS);
        let mut fast = StepBudget::new();
        fast.record(8, 0, 0.4);
        fast.record(0, 512, 0.005); // ~10 µs per position, measured with nothing decoding
        assert_eq!(run(&mut fast, 12, 1e-5).last(), Some(&MAX_POSITIONS), "0.5 · 0.4 s / 10 µs ≫ 512: capped");
        let mut mid = StepBudget::new();
        mid.record(8, 0, 0.4);
        mid.record(0, 512, 5.12); // 10 ms per position
        assert_eq!(run(&mut mid, 10, 0.01)[6..], [20, 20, 20, 20]);
    }

    #[test]
    fn per_position_cost_weighs_steps_by_positions_and_decays() {
        let mut b = StepBudget::new();
        b.record(2, 0, 1.0);
        b.record(2, 10, 2.0); // 0.1 s per position over 10
        b.record(2, 1, 1.5); // one noisy step: 0.5 s for 1 position
        // (0.75 · 1.0 + 0.5) / (0.75 · 10 + 1) = 1.25 / 8.5
        let p = b.seconds_per_position().unwrap();
        assert!((p - 1.25 / 8.5).abs() < 1e-12, "{p}");
        // Faster than the decode figure (noise): counted as no extra cost, not a negative one.
        b.record(2, 5, 0.9);
        let p2 = b.seconds_per_position().unwrap();
        assert!((p2 - 0.75 * 1.25 / (0.75 * 8.5 + 5.0)).abs() < 1e-12, "{p2}");
    }

    #[test]
    fn decode_figure_is_a_running_average_per_row_count_and_falls_back_to_the_nearest() {
        let mut b = StepBudget::new();
        b.record(4, 0, 0.4);
        b.record(4, 0, 0.8); // 0.4 + 0.25 · 0.4
        assert!((b.decode_seconds(4).unwrap() - 0.5).abs() < 1e-12);
        assert!((b.decode_seconds(3).unwrap() - 0.5).abs() < 1e-12, "nearest measured: 4");
        b.record(1, 0, 0.2);
        assert!((b.decode_seconds(2).unwrap() - 0.2).abs() < 1e-12, "nearest measured: 1");
        assert_eq!(StepBudget::new().decode_seconds(1), None);
        // A prefill step beside rows with no figure at all is not counted.
        let mut c = StepBudget::new();
        c.record(3, 7, 1.0);
        assert_eq!(c.seconds_per_position(), None);
        c.record(3, 0, f64::NAN);
        assert_eq!(c.decode_seconds(3), None, "non-finite times are ignored");
    }

    #[test]
    fn the_chunk_shrinks_at_once_when_steps_get_dearer() {
        let mut b = StepBudget::new();
        b.record(8, 0, 0.4);
        assert_eq!(run(&mut b, 8, 0.01).last(), Some(&20));
        // Positions now cost ten times as much: the next grant follows the estimate down at once.
        b.record(8, 20, 0.4 + 20.0 * 0.1);
        let p = b.seconds_per_position().unwrap();
        assert_eq!(b.positions(8), fit(0.4, p));
        assert!(run(&mut b, 12, 0.1).last().is_some_and(|&g| g == 2), "0.5 · 0.4 / 0.1 = 2 once the old steps have decayed");
    }
}
