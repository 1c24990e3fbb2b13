#!/usr/bin/env python3
"""A motor with a rolling-element bearing that fails over hours: seeded, reproducible runs of
12 condition-monitoring channels sampled once a minute.

The physics is the standard condition-monitoring picture, simplified but coupled:
- Speed: a 4-pole induction motor on 50 Hz (1500 rpm synchronous) with slip growing with load,
  so every fault frequency moves with load: shaft f_r = 25 (1 - 0.033 L) Hz.
- Bearing 6205 (9 balls, ball 7.94 mm, pitch 39.04 mm, contact angle 0): outer-race defect
  frequency BPFO = 3.585 f_r, inner race BPFI = 5.415 f_r. A defect shows first as impacts at its
  frequency (envelope-band energy, kurtosis up), then, as the damage spreads, as broadband
  vibration (RMS up) while kurtosis falls back: the textbook stages of bearing wear.
- Damage grows exponentially from an onset (Paris-law-like: rate proportional to damage and to
  load cubed, the bearing life exponent), and the run fails when damage reaches 1.
- Heat: bearing temperature follows ambient (a daily cycle), load and the friction the damage
  adds, through a 30-minute thermal lag; winding temperature follows I^2, lagged 60 minutes.
- Current: magnitude with load; friction adds torque; bearing faults modulate the air gap and
  show in the current spectrum at f_line +- k f_char (motor current signature analysis).
- Load: shifts of 1 to 4 hours at levels from 30 % to 100 %, with ramps.

Channels (one row a minute), in order:
  0-2  vibration velocity RMS, x (radial, load side), y (radial), z (axial), mm/s
  3    1x running-speed amplitude, mm/s
  4    2x running-speed amplitude, mm/s
  5    envelope energy in the BPFO band, g^2
  6    envelope energy in the BPFI band, g^2
  7    vibration kurtosis
  8    bearing temperature, degC
  9    winding temperature, degC
  10   current RMS, A
  11   current sideband at f_line +- f_fault, dB below the line component

Labels per minute: hours to failure (RUL; healthy runs have none) and the health state:
0 healthy (no failure within 24 h), 1 degrading (within 24 h), 2 critical (within 6 h).
"""
import numpy as np

CHANNELS = [
    "vib_x_rms", "vib_y_rms", "vib_z_rms", "amp_1x", "amp_2x", "env_bpfo", "env_bpfi",
    "kurtosis", "bearing_temp", "winding_temp", "current_rms", "current_sideband_db",
]
BPFO, BPFI = 3.585, 5.415
DEGRADING_H, CRITICAL_H = 24.0, 6.0


def load_profile(rng, minutes):
    """Shifts of 1-4 h at 30-100 % load, joined by 5-minute ramps."""
    out = np.empty(minutes)
    t, level = 0, rng.uniform(0.3, 1.0)
    while t < minutes:
        length = int(rng.uniform(60, 240))
        nxt = rng.uniform(0.3, 1.0)
        ramp = np.linspace(level, nxt, 5)
        seg = np.concatenate([ramp, np.full(max(length - 5, 0), nxt)])
        out[t:t + len(seg)] = seg[: minutes - t]
        t += len(seg)
        level = nxt
    return out


def lag(x, tau, x0):
    """First-order lag with time constant tau minutes."""
    y, a = np.empty_like(x), 1.0 / tau
    v = x0
    for i, xi in enumerate(x):
        v += a * (xi - v)
        y[i] = v
    return y


def run(seed, faulty=True, hours=None, with_onset=False):
    """One run: (features [minutes, 12] float32, rul_hours [minutes] (inf when healthy), fault
    kind), and with `with_onset` the minute the fault starts (the run's length when healthy)."""
    rng = np.random.default_rng(seed)
    hours = hours or rng.uniform(30, 72)
    minutes = int(hours * 60)
    load = load_profile(rng, minutes)
    shaft = 25.0 * (1 - 0.033 * load)  # Hz
    kind = rng.choice(["outer", "inner"]) if faulty else "none"
    damage = np.zeros(minutes)
    fail_at = None
    onset = minutes
    if faulty:
        onset = int(rng.uniform(0.15, 0.45) * minutes)
        # Growth per minute, scaled by load cubed; tuned so failure comes 8-40 h after onset.
        rate = rng.uniform(0.0025, 0.006)
        d = 0.01
        for i in range(onset, minutes):
            d *= 1 + rate * (0.4 + 0.6 * load[i] ** 3)
            damage[i] = min(d, 1.0)
            if d >= 1.0:
                fail_at = i
                break
        if fail_at is None:  # did not fail in time: stretch growth to end the run failed
            fail_at = minutes - 1
            damage[onset:] = np.linspace(0.01, 1.0, minutes - onset) ** 2
        minutes = fail_at + 1
        load, shaft, damage = load[:minutes], shaft[:minutes], damage[:minutes]
    t_h = np.arange(minutes) / 60.0
    # Stage weights: impacts early (damage small), broadband later.
    impacts = damage * np.exp(-3 * damage)
    spread = damage ** 2
    ambient = 24 + 4 * np.sin(2 * np.pi * (t_h + rng.uniform(0, 24)) / 24) + rng.normal(0, 0.3)
    unbalance = rng.uniform(0.4, 0.9)
    base = 0.9 + 0.6 * load
    n = lambda s: rng.normal(0, s, minutes)
    vib_x = base + 0.3 * unbalance + 6.0 * spread + 1.5 * impacts + n(0.05)
    vib_y = 0.9 * base + 0.25 * unbalance + 5.0 * spread + 1.2 * impacts + n(0.05)
    vib_z = 0.5 * base + 0.1 * unbalance + 2.0 * spread + 0.4 * impacts + n(0.04)
    amp_1x = unbalance * (shaft / 25.0) ** 2 + 0.4 * spread + n(0.02)
    amp_2x = 0.25 * unbalance + 0.1 * load + 0.6 * spread + n(0.015)
    env_base = 0.02 + 0.01 * load
    outer = kind == "outer"
    env_bpfo = env_base + (4.0 if outer else 0.6) * (impacts + 0.5 * spread) * (0.5 + load) + np.abs(n(0.006))
    # An inner-race defect passes through the load zone once a turn: weaker, more load-dependent.
    env_bpfi = env_base + (3.0 if not outer and faulty else 0.4) * (impacts + 0.5 * spread) * (0.3 + load ** 2) + np.abs(n(0.006))
    kurtosis = 3.0 + 25.0 * impacts + n(0.15)
    friction = 18.0 * spread + 3.0 * impacts
    bearing_temp = lag(ambient + 14 * load + friction, 30.0, ambient[0] + 14 * load[0]) + n(0.15)
    current = 4.0 + 7.5 * load + 0.8 * spread + n(0.04)
    winding_temp = lag(ambient + 0.45 * current ** 2, 60.0, ambient[0] + 0.45 * current[0] ** 2) + n(0.2)
    f_char = (BPFO if outer else BPFI) * shaft  # where the sideband sits; its level is what we log
    sideband = -62 + 30 * np.sqrt(damage) + 2 * load + n(0.8) + 0 * f_char
    feats = np.stack([vib_x, vib_y, vib_z, amp_1x, amp_2x, env_bpfo, env_bpfi, kurtosis,
                      bearing_temp, winding_temp, current, sideband], axis=1).astype(np.float32)
    # Occasional sensor glitches: one channel spikes for a minute.
    for _ in range(rng.poisson(minutes / 600)):
        i, c = rng.integers(minutes), rng.integers(12)
        feats[i, c] *= rng.uniform(1.5, 3.0)
    rul = (fail_at - np.arange(minutes)) / 60.0 if faulty else np.full(minutes, np.inf)
    if with_onset:
        return feats, rul.astype(np.float32), kind, onset
    return feats, rul.astype(np.float32), kind


def health(rul):
    return np.where(rul <= CRITICAL_H, 2, np.where(rul <= DEGRADING_H, 1, 0)).astype(np.int64)
