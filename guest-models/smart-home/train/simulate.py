#!/usr/bin/env python3
"""A room with an air conditioner, its occupants and six sensors, one row a minute: seeded,
reproducible days for training the `smart-home` plugin.

The room (a 4 x 5 x 2.6 m living room or bedroom) is simulated from mass and heat balances:
- Outdoor temperature follows a daily cycle around a season's mean; solar gain through the
  window follows the sun, dimmed by clouds that drift slowly.
- Indoor temperature: a first-order envelope (time constant 3 to 6 hours) towards outdoor, plus
  100 W of heat per person, solar gain, and the air conditioner's own cooling or heating when the
  simulated occupant's thermostat rule switches it on.
- Humidity: outdoor moisture through ventilation plus 50 g/h of breath per person and cooking or
  showers now and then; relative humidity from the absolute moisture at the room temperature.
- CO2: 420 ppm outdoor; each person exhales about 0.3 L/min; air changes 0.3 to 1.5 per hour
  (higher when a window is open).
- PIR motion: triggers per minute, Poisson, from the occupants' activity (awake and moving, awake
  and still, asleep), with rare false triggers from sunlight and pets.
- Light: daylight through the window, plus lamps when someone is home, awake and it is dark.
- Sound level: 28-32 dBA background, speech and television with occupants, street noise bursts.
- Occupancy: a household's schedule (out at work on weekdays, asleep at night, irregular
  weekends), with random early returns, visitors and empty days.

Channels: temperature degC, relative humidity %, PIR triggers in the minute, light lux, CO2 ppm,
sound dBA.

Labels per minute: occupancy (0 empty, 1 occupied) and the comfort action an air conditioner
should take, from the true room state: `off`; `cool` when occupied and warmer than 26 degC
(24.5 asleep); `heat` when occupied and colder than 20 degC (18 asleep); `ventilate` when occupied
and CO2 is above 1000 ppm or humidity above 65 % (and neither cooling nor heating is due).
"""
import numpy as np

CHANNELS = ["temperature_c", "humidity_pct", "pir_triggers", "light_lux", "co2_ppm", "sound_dba"]
ACTIONS = ["off", "cool", "heat", "ventilate"]
VOLUME_M3 = 52.0


def saturation_g_m3(t):
    """Water vapour density at saturation, g/m3 (Magnus formula)."""
    es = 6.112 * np.exp(17.62 * t / (243.12 + t))  # hPa
    return 216.7 * es / (273.15 + t)


def schedule(rng, days):
    """Per minute: people at home and their state (0 out, 1 awake moving, 2 awake still, 3 asleep)."""
    minutes = days * 1440
    people = np.zeros(minutes, np.int64)
    state = np.zeros(minutes, np.int64)
    size = rng.integers(1, 4)
    for d in range(days):
        base = d * 1440
        weekend = (d % 7) in (5, 6)
        empty_day = rng.random() < 0.08
        wake = int(rng.normal(7 * 60, 40)) if not weekend else int(rng.normal(9 * 60, 60))
        sleep = int(rng.normal(23 * 60, 45))
        leave = wake + int(rng.uniform(30, 90))
        back = int(rng.normal(18 * 60, 60)) if not (rng.random() < 0.1) else int(rng.normal(14 * 60, 60))
        for m in range(1440):
            t = base + m
            if empty_day:
                continue
            if m < wake or m >= sleep:
                people[t], state[t] = size, 3
            elif (not weekend and leave <= m < back) or (weekend and rng.random() < 0.002):
                continue
            else:
                people[t] = size
                state[t] = 1 if rng.random() < 0.45 else 2
        # Weekend outings: a few hours out.
        if weekend and not empty_day and rng.random() < 0.7:
            start = base + int(rng.uniform(11, 16) * 60)
            span = int(rng.uniform(90, 300))
            people[start:start + span] = 0
            state[start:start + span] = 0
        # Visitors in the evening.
        if rng.random() < 0.15:
            start = base + int(rng.uniform(18, 21) * 60)
            span = int(rng.uniform(60, 180))
            people[start:start + span] += rng.integers(1, 3)
            state[start:start + span] = np.where(state[start:start + span] == 0, 1, state[start:start + span])
    return people, state


def day_series(rng, minutes, mean, amplitude, tau):
    """A slow random walk plus a daily cycle."""
    t = np.arange(minutes) / 1440.0
    walk = np.cumsum(rng.normal(0, 1, minutes)) * 0.02
    walk -= np.convolve(walk, np.ones(tau) / tau, mode="same")
    return mean + amplitude * np.sin(2 * np.pi * (t - 0.375)) + walk


def run(seed, days=7):
    """One room for `days`: (features [minutes, 6] float32, occupancy [minutes], action [minutes])."""
    rng = np.random.default_rng(seed)
    minutes = days * 1440
    season = rng.uniform(-1, 1)  # -1 winter .. 1 summer
    t_out = day_series(rng, minutes, 14 + 12 * season, 4 + 2 * abs(season), 720)
    clouds = np.clip(0.5 + np.cumsum(rng.normal(0, 0.02, minutes)) % 1.2 - 0.3, 0, 1)
    hour = (np.arange(minutes) % 1440) / 60.0
    sun = np.clip(np.sin(np.pi * (hour - 6.5) / 13.0), 0, None) * (0.8 + 0.2 * season)
    daylight = 12000 * sun * (1 - 0.8 * clouds)
    people, state = schedule(rng, days)
    tau = rng.uniform(180, 360)
    ach = rng.uniform(0.3, 0.8)
    t_in, w_in, co2 = 21.0 + 3 * season, 8.0, 450.0
    w_out = rng.uniform(0.5, 0.8) * saturation_g_m3(t_out)
    ac = 0  # 0 off, 1 cool, 2 heat
    window_open = False
    feats = np.zeros((minutes, 6), np.float32)
    occupancy = (people > 0).astype(np.int64)
    action = np.zeros(minutes, np.int64)
    for i in range(minutes):
        home, st = people[i], state[i]
        asleep = st == 3
        # The occupants' own thermostat habit drives the AC (what the plugin must learn to advise).
        if home:
            hi, lo = (24.5, 18.0) if asleep else (26.0, 20.0)
            if t_in > hi + 0.5:
                ac = 1
            elif t_in < lo - 0.5:
                ac = 2
            elif (ac == 1 and t_in < hi - 1) or (ac == 2 and t_in > lo + 1):
                ac = 0
            if rng.random() < 0.002:
                window_open = not window_open
        else:
            ac, window_open = 0, False
        air = (ach + (2.5 if window_open else 0.0)) / 60.0  # air changes per minute
        # Heat into an effective 600 kJ/K of air, furniture and inner walls, K per minute:
        # 100 W a person, up to 150 W of sun through the window.
        gain = (100 * home + 150 * daylight[i] / 12000) * 60 / 600e3
        ac_power = {0: 0.0, 1: -0.08, 2: 0.1}[ac]
        t_in += (t_out[i] - t_in) / tau + gain + ac_power + air * (t_out[i] - t_in) * 0.3
        moisture = 40.0 * home / 60.0 / VOLUME_M3 + (0.4 if rng.random() < 0.0007 * home else 0.0)
        w_in += air * (w_out[i] - w_in) + moisture - (0.02 if ac == 1 else 0.0)
        w_in = max(w_in, 1.0)
        # 0.3 L/min of CO2 a person awake (0.18 asleep) into 52,000 L: 5.8 ppm a minute.
        co2 += air * (420 - co2) + home * 5.8 * (0.6 if asleep else 1.0)
        rh = float(np.clip(100 * w_in / saturation_g_m3(t_in), 5, 100))
        activity = {0: 0.0, 1: 2.5, 2: 0.4, 3: 0.05}[st] * (home ** 0.5 if home else 0)
        pir = rng.poisson(activity + 0.01 + 0.02 * (daylight[i] > 8000))
        lamps = 300.0 if home and not asleep and daylight[i] < 150 else 0.0
        light = daylight[i] * 0.08 + lamps + rng.normal(0, 3)
        speech = {0: 0.0, 1: 52.0, 2: 46.0, 3: 31.0}[st] if home else 0.0
        sound = 10 * np.log10(10 ** (rng.uniform(28, 32) / 10) + (10 ** (speech / 10) if speech else 0)
                              + (10 ** (rng.uniform(45, 60) / 10) if rng.random() < 0.01 else 0)) + rng.normal(0, 1)
        feats[i] = [t_in + rng.normal(0, 0.05), rh + rng.normal(0, 0.5), pir, max(light, 0.0),
                    co2 + rng.normal(0, 15), sound]
        if home:
            hi, lo = (24.5, 18.0) if asleep else (26.0, 20.0)
            if t_in > hi:
                action[i] = 1
            elif t_in < lo:
                action[i] = 2
            elif co2 > 1000 or rh > 65:
                action[i] = 3
    return feats, occupancy, action
