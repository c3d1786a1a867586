//! Rotary position embedding, rotate-half convention (Qwen3, model-spec.md §7), float32.
//! Angles as in transformers: inv[j] = 1 / θ^(2j/d) in f32, a = f32(pos)·inv[j], cos/sin of a in f32.

/// cos/sin of every (position, j) for positions start..start+len: [len, d/2] each.
pub struct Rope {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64, start: usize, len: usize) -> Rope {
        let half = head_dim / 2;
        let inv: Vec<f32> = (0..half).map(|j| 1.0 / (theta as f32).powf((2 * j) as f32 / head_dim as f32)).collect();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for p in start..start + len {
            for &f in &inv {
                // The f32 angle is what the reference rounds; cos/sin of it via f64 are correctly rounded.
                let a = (p as f32 * f) as f64;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Rope { half, cos, sin }
    }

    /// Rotates x [len, heads, 2·half] in place: row i uses position start + i.
    pub fn apply(&self, x: &mut [f32], heads: usize) {
        let d = 2 * self.half;
        assert_eq!(x.len(), self.cos.len() / self.half.max(1) * heads * d, "rope: x must be [len, heads, head_dim]");
        for (i, row) in x.chunks_mut(heads * d).enumerate() {
            let (c, s) = (&self.cos[i * self.half..(i + 1) * self.half], &self.sin[i * self.half..(i + 1) * self.half]);
            for v in row.chunks_mut(d) {
                let (a, b) = v.split_at_mut(self.half);
                for j in 0..self.half {
                    let (x1, x2) = (a[j], b[j]);
                    a[j] = x1 * c[j] - x2 * s[j];
                    b[j] = x2 * c[j] + x1 * s[j];
                }
            }
        }
    }
}
