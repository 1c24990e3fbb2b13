"""The same MFCCs in pure Python, no host kernels: what `frontend=python`
runs, to measure what the host's `gatehouse:dsp` front end saves."""

import cmath
import math

RATE, CLIP, FRAME, HOP, FFT, MELS, COEFFS = 16000, 16000, 480, 320, 512, 40, 10


def _mel(f):
    return 1127.0 * math.log(1.0 + f / 700.0)


def _tables():
    window = [0.5 - 0.5 * math.cos(2 * math.pi * i / FRAME) for i in range(FRAME)]
    bins = FFT // 2 + 1
    lo, hi = _mel(20.0), _mel(4000.0)
    edges = [lo + (hi - lo) * i / (MELS + 1) for i in range(MELS + 2)]
    weights = []  # per bin: [(band, weight)] of the nonzero weights
    for b in range(bins):
        row = []
        if b > 0:
            m = _mel(RATE / 2 * b / (bins - 1))
            for k in range(MELS):
                l, c, u = edges[k], edges[k + 1], edges[k + 2]
                w = max(0.0, min((m - l) / (c - l), (u - m) / (u - c)))
                if w > 0:
                    row.append((k, w))
        weights.append(row)
    scale = math.sqrt(2.0 / MELS)
    dct = [[scale * math.cos(math.pi * k * (2 * n + 1) / (2 * MELS)) for n in range(MELS)] for k in range(COEFFS)]
    twiddles = [cmath.exp(-2j * math.pi * i / FFT) for i in range(FFT // 2)]
    rev = [int(format(i, "09b")[::-1], 2) for i in range(FFT)]
    return window, weights, dct, twiddles, rev


_WINDOW, _WEIGHTS, _DCT, _TW, _REV = _tables()


def _fft(x):
    a = [x[r] for r in _REV]
    size = 2
    while size <= FFT:
        half, step = size // 2, FFT // size
        for start in range(0, FFT, size):
            for k in range(half):
                t = _TW[k * step] * a[start + k + half]
                u = a[start + k]
                a[start + k] = u + t
                a[start + k + half] = u - t
        size *= 2
    return a


def mfcc(samples):
    clip = list(samples[:CLIP]) + [0.0] * max(0, CLIP - len(samples))
    peak = max(clip)
    if peak > 0:
        clip = [s / peak for s in clip]
    out = []
    for f in range(1 + (CLIP - FRAME) // HOP):
        frame = [clip[f * HOP + i] * _WINDOW[i] for i in range(FRAME)] + [0.0] * (FFT - FRAME)
        spectrum = _fft(frame)
        mel = [0.0] * MELS
        for b, row in enumerate(_WEIGHTS):
            if row:
                m = abs(spectrum[b])
                for k, w in row:
                    mel[k] += m * w
        logs = [math.log(v + 1e-6) for v in mel]
        out.extend(sum(d * l for d, l in zip(row, logs)) for row in _DCT)
    return out
