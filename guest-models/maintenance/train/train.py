#!/usr/bin/env python3
"""Train the `maintenance` plugin's two models on simulated motor runs (simulate.py), quantize
them to int8, evaluate them as the plugin runs them, and write what the plugin and its tests use.

  python3 guest-models/maintenance/train/train.py        (TF_USE_LEGACY_KERAS=1 is set here)
  python3 guest-models/maintenance/train/train.py --sample-only   (the sample alone, from the models)

Pinned: tensorflow-cpu 2.21.0, tf-keras 2.21.0, ai-edge-litert 2.3.0, numpy 2.x, Python 3.11.
Seeded throughout; the data is made here, nothing is downloaded.

Split (by run, never by window): train seeds 0-239 (200 faulty, 40 healthy), validation
1000-1029, test 2000-2049 (40 faulty, 10 healthy), each run 30-72 h, one row a minute.

Models, both on windows of the last 32 minutes of the 12 channels, normalized with the training
set's mean and deviation; output 4 values: three health-state logits and the hours to failure
divided by 48:
  lstm_attention.tflite  LSTM(24, all steps) -> dot-product self-attention -> mean -> Dense(4)
  tcn.tflite             TCN-Lite: causal Conv1D(16, 3) at dilations 1, 2, 4, 8 -> mean -> Dense(4)
Both are converted (as batch-1 copies: the converter fuses the LSTM only with a fixed batch)
to int8 with float32 input and output (the model's own QUANTIZE and
DEQUANTIZE), from 512 training windows.

Evaluation: the int8 models in LiteRT's reference kernels, a window every minute of every test
run, the plugin's alarm rule (p(degrading) + p(critical) >= 0.5 for 5 minutes in a row raises it;
below 0.3 for 30 minutes clears it). Reported: per-class precision and recall, the RUL error
within 48 h of failure, each faulty run's alarm lead time, and false alarms (alarms raised while
no fault exists: healthy runs, and faulty runs before the fault's onset) per 1000 hours.

Writes:
  guest-models/maintenance/model/{lstm_attention,tcn}.tflite, norm.bin (mean, std: 2x12 f32 LE)
  guest-models/maintenance/train/metrics.json
  examples/data/maintenance/motor_run.f32   a held-out faulty run's last 30 h, rows of 12 f32 LE
  examples/data/maintenance/expected.json   LiteRT's outputs for every window of that file
"""
import json
import os
import pathlib
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "training"))
import simulate  # noqa: E402
from int8 import Int8Model, convert  # noqa: E402

ROOT = HERE.parents[2]
MODEL_DIR = HERE.parent / "model"
DATA_DIR = ROOT / "examples/data/maintenance"
WINDOW, RUL_CAP = 32, 48.0
ALARM_ON, ALARM_ON_MIN, ALARM_OFF, ALARM_OFF_MIN = 0.5, 5, 0.3, 30
K = tf.keras.layers


def runs(seeds_faulty, seeds_healthy):
    out = []
    for s in seeds_faulty:
        out.append((s,) + simulate.run(s, faulty=True))
    for s in seeds_healthy:
        out.append((s,) + simulate.run(s, faulty=False))
    return out


def windows(run_list, stride, mean, std):
    xs, ys = [], []
    for _, f, rul, _ in run_list:
        z = (f - mean) / std
        for end in range(WINDOW, len(f) + 1, stride):
            r = rul[end - 1]
            xs.append(z[end - WINDOW:end])
            ys.append([simulate.health(np.array([r]))[0], min(r, RUL_CAP) / RUL_CAP])
    return np.stack(xs).astype(np.float32), np.array(ys, np.float32)


def loss(y, out):
    ce = tf.keras.losses.sparse_categorical_crossentropy(tf.cast(y[:, 0], tf.int32), out[:, :3], from_logits=True)
    return ce + 4.0 * tf.square(y[:, 1] - out[:, 3])


def lstm_attention(batch=None):
    x = K.Input((WINDOW, 12), batch_size=batch)
    h = K.LSTM(24, return_sequences=True)(x)
    q = K.Dense(16)(h)
    att = K.Softmax()(tf.matmul(q, q, transpose_b=True) * 0.25)
    ctx = tf.matmul(att, h)
    return tf.keras.Model(x, K.Dense(4)(tf.reduce_mean(ctx, axis=1)))


def tcn(batch=None):
    x = K.Input((WINDOW, 12), batch_size=batch)
    h = x
    for d in (1, 2, 4, 8):
        h = K.Conv1D(16, 3, dilation_rate=d, padding="causal", activation="relu")(h)
    return tf.keras.Model(x, K.Dense(4)(tf.reduce_mean(h, axis=1)))


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def alarms(probs):
    """The plugin's rule over per-minute p(degrading) + p(critical): the minutes alarms rise at."""
    raised, on, above, below = [], False, 0, 0
    for i, p in enumerate(probs):
        above = above + 1 if p >= ALARM_ON else 0
        below = below + 1 if p < ALARM_OFF else 0
        if not on and above >= ALARM_ON_MIN:
            on = True
            raised.append(i)
        elif on and below >= ALARM_OFF_MIN:
            on = False
    return raised


def evaluate(name, model, test, mean, std):
    confusion = np.zeros((3, 3), np.int64)
    rul_err, leads, false_alarms, healthy_hours, missed = [], [], 0, 0.0, 0
    for seed, f, rul, kind in test:
        z = ((f - mean) / std).astype(np.float32)
        outs = np.stack([model(z[e - WINDOW:e]) for e in range(WINDOW, len(f) + 1)])
        p = np.stack([softmax(o[:3]) for o in outs])
        r = rul[WINDOW - 1:]
        truth = simulate.health(r)
        for t, pr in zip(truth, p.argmax(1)):
            confusion[t, pr] += 1
        near = r <= RUL_CAP
        rul_err += list(np.abs(np.clip(outs[near, 3], 0, 1) * RUL_CAP - r[near]))
        raised = alarms(p[:, 1] + p[:, 2])
        onset = simulate.run(seed, faulty=kind != "none", with_onset=True)[3]
        # Minutes with no fault present: before onset (all of a healthy run).
        healthy_minutes = max(onset - (WINDOW - 1), 0)
        healthy_hours += healthy_minutes / 60
        false_alarms += sum(1 for a in raised if a < healthy_minutes)
        if kind != "none":
            real = [a for a in raised if a >= healthy_minutes]
            if real:
                leads.append(float(r[real[0]]))
            else:
                missed += 1
    precision = [confusion[c, c] / max(confusion[:, c].sum(), 1) for c in range(3)]
    recall = [confusion[c, c] / max(confusion[c].sum(), 1) for c in range(3)]
    return {
        "model": name,
        "windows": int(confusion.sum()),
        "confusion_rows_truth_cols_predicted": confusion.tolist(),
        "precision": {n: round(float(v), 3) for n, v in zip(["healthy", "degrading", "critical"], precision)},
        "recall": {n: round(float(v), 3) for n, v in zip(["healthy", "degrading", "critical"], recall)},
        "rul_mae_hours_within_48h": round(float(np.mean(rul_err)), 2),
        "faulty_runs": len(leads) + missed,
        "alarmed_before_failure": len(leads),
        "lead_time_hours": {
            "median": round(float(np.median(leads)), 1) if leads else None,
            "p10": round(float(np.percentile(leads, 10)), 1) if leads else None,
            "min": round(float(np.min(leads)), 1) if leads else None,
        },
        "false_alarms": false_alarms,
        "fault_free_hours": round(healthy_hours, 1),
        "false_alarms_per_1000_h": round(1000 * false_alarms / max(healthy_hours, 1e-9), 2),
    }


def main():
    tf.keras.utils.set_random_seed(42)
    train = runs(range(0, 200), range(200, 240))
    val = runs(range(1000, 1024), range(1024, 1030))
    test = runs(range(2000, 2040), range(2040, 2050))
    allf = np.concatenate([f for _, f, _, _ in train])
    mean, std = allf.mean(0).astype(np.float32), (allf.std(0) + 1e-6).astype(np.float32)
    xtr, ytr = windows(train, 4, mean, std)
    xva, yva = windows(val, 8, mean, std)
    print("train windows", len(xtr), "classes", np.bincount(ytr[:, 0].astype(int)))
    rng = np.random.default_rng(0)
    rep = xtr[rng.choice(len(xtr), 512, replace=False)]
    MODEL_DIR.mkdir(exist_ok=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    np.concatenate([mean, std]).astype("<f4").tofile(MODEL_DIR / "norm.bin")
    metrics, models = [], {}
    for name, make in (("lstm_attention", lstm_attention), ("tcn", tcn)):
        m = make()
        m.compile(optimizer=tf.keras.optimizers.Adam(2e-3), loss=loss)
        m.fit(xtr, ytr, batch_size=256, epochs=8, validation_data=(xva, yva), verbose=2,
              shuffle=True)
        # The converter fuses the LSTM only with a fixed batch: the same
        # weights in a batch-1 model.
        one = make(batch=1)
        one.set_weights(m.get_weights())
        data = convert(one, rep)
        (MODEL_DIR / f"{name}.tflite").write_bytes(data)
        models[name] = Int8Model(data)
        metrics.append(evaluate(name, models[name], test, mean, std))
        print(json.dumps(metrics[-1], indent=1))
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    write_sample(test[0], models, mean, std)


def write_sample(run, models, mean, std):
    """The sample: a held-out faulty run's last 30 hours (healthy, then the fault grows to
    failure), and LiteRT's output for every window."""
    seed, f, rul, kind = run
    tail = f[-30 * 60:]
    tail.astype("<f4").tofile(DATA_DIR / "motor_run.f32")
    z = ((tail - mean) / std).astype(np.float32)
    expected = {
        "about": f"simulate.run({seed}) (an {kind}-race fault), its last {len(tail)} minutes; "
                 f"outputs of the int8 models in LiteRT's reference kernels for each {WINDOW}-minute "
                 "window, in order, made by guest-models/maintenance/train/train.py",
        "rows": len(tail),
        "window": WINDOW,
        "hours_to_failure_at_last_row": float(rul[-1]),
    }
    for name, m in models.items():
        expected[name] = [m(z[e - WINDOW:e]).tolist() for e in range(WINDOW, len(tail) + 1)]
    (DATA_DIR / "expected.json").write_text(json.dumps(expected) + "\n")


def sample_only():
    """Remake the sample from the models and normalization already written."""
    norm = np.fromfile(MODEL_DIR / "norm.bin", "<f4")
    models = {n: Int8Model((MODEL_DIR / f"{n}.tflite").read_bytes()) for n in ("lstm_attention", "tcn")}
    write_sample(runs([2000], [])[0], models, norm[:12], norm[12:])


if __name__ == "__main__":
    sample_only() if "--sample-only" in sys.argv else main()
