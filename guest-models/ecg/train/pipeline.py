"""The `ecg` plugin's signal path, written out sample by sample in float64 so that the plugin
(`guest-models/ecg/src/`) can do the very same arithmetic in the very same order: the windows it
feeds the model are then equal to these bit for bit, and its outputs to LiteRT's on them.

Per sample, at 360 Hz, lead MLII in millivolts:
1. band-pass: a 2nd-order Butterworth high-pass at 0.5 Hz (baseline wander) and a 2nd-order
   Butterworth low-pass at 40 Hz (mains and muscle noise), each a biquad in transposed direct
   form II. The coefficients are scipy.signal.butter's, written out so that no trigonometry (whose
   last bit differs between C libraries) is part of the contract;
2. QRS detection after Pan and Tompkins (1985): the squared two-sample difference, summed over
   the last 150 ms, whose local maxima are candidates; a candidate above
   noise + 0.25 (signal - noise) at least 200 ms after the last beat is a beat, and the levels
   follow the beats and the rejected candidates. The first 2 s only learn the signal level; when
   no beat comes for 3 s the levels halve, so an artefact cannot silence the detector;
3. the R peak: the largest filtered sample in the 80 samples up to the candidate;
4. the beat's window: the 192 samples before R, R and the 63 after (256), as float32, handed
   over as soon as the last of them has arrived. The long lead-in holds the previous beat's
   T wave, which is where a premature atrial beat shows.
"""

FS = 360
HIGH_B = (0.9938483285621093, -1.9876966571242185, 0.9938483285621093)
HIGH_A = (-1.987658813704708, 0.9877345005437297)
LOW_B = (0.08042365897205703, 0.16084731794411405, 0.08042365897205703)
LOW_A = (-1.0533299208134783, 0.37502455670170654)
INTEGRATE = 54      # 150 ms
LEARN = 720         # 2 s
REFRACTORY = 72     # 200 ms
QUIET = 1080        # 3 s
SEARCH = 80         # R search, samples back from the candidate
PRE, POST = 192, 63  # window: R - PRE ..= R + POST
WINDOW = PRE + 1 + POST
RING = 512


class Pipeline:
    def __init__(self):
        self.n = 0
        self.h1 = self.h2 = self.l1 = self.l2 = 0.0
        self.y = [0.0] * RING
        self.s = [0.0] * 64
        self.m = self.m1 = self.m2 = 0.0
        self.max_m = 0.0
        self.spk = self.npk = 0.0
        self.last_beat = -1
        self.last_event = LEARN
        self.last_r = -1
        self.pending = []

    def push(self, x):
        """One sample (a float: the float32 value the plugin receives); the beats whose windows
        completed with it, as (r, window of 256 floats to be made float32)."""
        n = self.n
        y1 = HIGH_B[0] * x + self.h1
        self.h1 = HIGH_B[1] * x - HIGH_A[0] * y1 + self.h2
        self.h2 = HIGH_B[2] * x - HIGH_A[1] * y1
        y = LOW_B[0] * y1 + self.l1
        self.l1 = LOW_B[1] * y1 - LOW_A[0] * y + self.l2
        self.l2 = LOW_B[2] * y1 - LOW_A[1] * y
        self.y[n % RING] = y
        d = y - self.y[(n - 2) % RING] if n >= 2 else y
        s = d * d
        old = self.s[(n - INTEGRATE) % 64] if n >= INTEGRATE else 0.0
        self.s[n % 64] = s
        self.m2, self.m1 = self.m1, self.m
        self.m = self.m + s - old
        if n < LEARN:
            if self.m > self.max_m:
                self.max_m = self.m
        else:
            if n == LEARN:
                self.spk = self.max_m
            c = n - 1
            if c > LEARN and self.m1 > self.m2 and self.m1 >= self.m:
                self.candidate(c, self.m1)
            if n - self.last_event > QUIET:
                self.spk = self.spk * 0.5
                self.npk = self.npk * 0.5
                self.last_event = n
        done = []
        while self.pending and self.pending[0] + POST <= n:
            r = self.pending.pop(0)
            done.append((r, [self.y[(r - PRE + k) % RING] for k in range(WINDOW)]))
        self.n = n + 1
        return done

    def candidate(self, c, v):
        threshold = self.npk + 0.25 * (self.spk - self.npk)
        if v <= threshold:
            self.npk = 0.125 * v + 0.875 * self.npk
            return
        if self.last_beat >= 0 and c - self.last_beat < REFRACTORY:
            return
        r = c
        for j in range(c - 1, c - SEARCH, -1):
            if self.y[j % RING] >= self.y[r % RING]:
                r = j
        if r <= self.last_r or r < PRE:
            return
        self.spk = 0.125 * v + 0.875 * self.spk
        self.last_beat = c
        self.last_event = c
        self.last_r = r
        self.pending.append(r)


def beats(samples):
    """Every beat of a stream of float32 samples (in mV): (r, float32 window)."""
    import numpy as np

    p = Pipeline()
    out = []
    for x in samples:
        for r, w in p.push(float(x)):
            out.append((r, np.array(w, np.float32)))
    return out
