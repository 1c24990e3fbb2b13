//! The signal path from samples to beat windows: band-pass, QRS detection,
//! R peak, window. It is `train/pipeline.py` step for step, in f64 and in
//! the same order of operations, because the windows must equal the ones
//! the model was trained and checked on bit for bit; that file's docstring
//! gives the reasons for each constant. Change both or neither.

const HIGH_B: [f64; 3] = [0.9938483285621093, -1.9876966571242185, 0.9938483285621093];
const HIGH_A: [f64; 2] = [-1.987658813704708, 0.9877345005437297];
const LOW_B: [f64; 3] = [
    0.08042365897205703,
    0.16084731794411405,
    0.08042365897205703,
];
const LOW_A: [f64; 2] = [-1.0533299208134783, 0.37502455670170654];
/// The integration window, 150 ms.
const INTEGRATE: u64 = 54;
/// Samples that only learn the signal level, 2 s.
const LEARN: u64 = 720;
/// The shortest time between two beats, 200 ms.
const REFRACTORY: u64 = 72;
/// Without a beat for this long (3 s) the levels halve.
const QUIET: u64 = 1080;
/// How far back from a candidate the R peak is looked for.
const SEARCH: u64 = 80;
/// The window: R - PRE ..= R + POST.
const PRE: u64 = 192;
const POST: u64 = 63;
pub const WINDOW: usize = (PRE + 1 + POST) as usize;
const RING: usize = 512;
const SQUARES: usize = 64;

/// One biquad in transposed direct form II.
#[derive(Default)]
struct Biquad {
    z1: f64,
    z2: f64,
}

impl Biquad {
    fn step(&mut self, b: &[f64; 3], a: &[f64; 2], x: f64) -> f64 {
        let y = b[0] * x + self.z1;
        self.z1 = b[1] * x - a[0] * y + self.z2;
        self.z2 = b[2] * x - a[1] * y;
        y
    }
}

/// A beat whose window is complete.
pub struct Beat {
    /// The R peak's sample, counted from the stream's first.
    pub r: u64,
    /// The filtered samples R - 192 ..= R + 63, in mV.
    pub window: Vec<f32>,
}

/// A stream's state between messages.
pub struct Pipeline {
    n: u64,
    high: Biquad,
    low: Biquad,
    y: [f64; RING],
    squares: [f64; SQUARES],
    /// The integrated signal now, one sample ago and two.
    m: [f64; 3],
    max_m: f64,
    signal: f64,
    noise: f64,
    last_beat: Option<u64>,
    last_event: u64,
    last_r: Option<u64>,
    /// R peaks detected whose windows are not complete yet.
    pending: std::collections::VecDeque<u64>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            n: 0,
            high: Biquad::default(),
            low: Biquad::default(),
            y: [0.0; RING],
            squares: [0.0; SQUARES],
            m: [0.0; 3],
            max_m: 0.0,
            signal: 0.0,
            noise: 0.0,
            last_beat: None,
            last_event: LEARN,
            last_r: None,
            pending: Default::default(),
        }
    }
}

impl Pipeline {
    /// Samples seen so far.
    pub fn samples(&self) -> u64 {
        self.n
    }

    fn y(&self, i: u64) -> f64 {
        self.y[(i % RING as u64) as usize]
    }

    /// One sample in mV; the beats whose windows it completed go to `out`.
    pub fn push(&mut self, x: f64, out: &mut Vec<Beat>) {
        let n = self.n;
        let y1 = self.high.step(&HIGH_B, &HIGH_A, x);
        let y = self.low.step(&LOW_B, &LOW_A, y1);
        self.y[(n % RING as u64) as usize] = y;
        let d = if n >= 2 { y - self.y(n - 2) } else { y };
        let s = d * d;
        let old = if n >= INTEGRATE {
            self.squares[((n - INTEGRATE) % SQUARES as u64) as usize]
        } else {
            0.0
        };
        self.squares[(n % SQUARES as u64) as usize] = s;
        self.m = [self.m[0] + s - old, self.m[0], self.m[1]];
        if n < LEARN {
            if self.m[0] > self.max_m {
                self.max_m = self.m[0];
            }
        } else {
            if n == LEARN {
                self.signal = self.max_m;
            }
            let c = n - 1;
            if c > LEARN && self.m[1] > self.m[2] && self.m[1] >= self.m[0] {
                self.candidate(c, self.m[1]);
            }
            if n - self.last_event > QUIET {
                self.signal *= 0.5;
                self.noise *= 0.5;
                self.last_event = n;
            }
        }
        while let Some(&r) = self.pending.front() {
            if r + POST > n {
                break;
            }
            self.pending.pop_front();
            let window = (0..WINDOW as u64)
                .map(|k| self.y(r - PRE + k) as f32)
                .collect();
            out.push(Beat { r, window });
        }
        self.n = n + 1;
    }

    fn candidate(&mut self, c: u64, v: f64) {
        let threshold = self.noise + 0.25 * (self.signal - self.noise);
        if v <= threshold {
            self.noise = 0.125 * v + 0.875 * self.noise;
            return;
        }
        if self.last_beat.is_some_and(|b| c - b < REFRACTORY) {
            return;
        }
        let mut r = c;
        for j in (c + 1 - SEARCH..c).rev() {
            if self.y(j) >= self.y(r) {
                r = j;
            }
        }
        if self.last_r.is_some_and(|l| r <= l) || r < PRE {
            return;
        }
        self.signal = 0.125 * v + 0.875 * self.signal;
        self.last_beat = Some(c);
        self.last_event = c;
        self.last_r = Some(r);
        self.pending.push_back(r);
    }
}
