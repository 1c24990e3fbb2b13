#!/usr/bin/env python3
"""Train the `smart-home` plugin's model on simulated rooms (simulate.py), quantize it to int8,
evaluate the int8 model as the plugin runs it, and write what the plugin and its tests use.

  python3 guest-models/smart-home/train/train.py                 (about 5 minutes on 2 cores)
  python3 guest-models/smart-home/train/train.py --sample-only   (the sample alone)

Pinned: tensorflow-cpu 2.21.0, tf-keras 2.21.0 (TF_USE_LEGACY_KERAS=1 is set here, as for the
other plugins' scripts), ai-edge-litert 2.3.0, numpy 2, Python 3.11. Seeded throughout; the data
is made here.

Split (by room, never by window): train seeds 0-119, validation 500-519, test 900-939; each a
week of minutes.

Model: the last 16 minutes of the 6 channels, normalized with the training set's mean and
deviation, through Conv1D(24, 3) -> Conv1D(24, 3, dilation 2) -> Conv1D(24, 3, dilation 4), the
mean over time and the last step's features, Dense(32) -> Dense(6): two occupancy logits
(empty, occupied) and four comfort-action logits (off, cool, heat, ventilate). int8 with float32
input and output.

Writes:
  guest-models/smart-home/model/comfort.tflite, norm.bin (mean, std: 2x6 f32 LE)
  guest-models/smart-home/train/metrics.json
  examples/data/smart-home/room_day.f32    a test room's day (1440 rows of 6 f32 LE)
  examples/data/smart-home/expected.json   LiteRT's outputs for every window of that day
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
DATA_DIR = ROOT / "examples/data/smart-home"
WINDOW = 16
K = tf.keras.layers


def rooms(seeds):
    return [(s,) + simulate.run(s) for s in seeds]


def windows(rs, stride, mean, std):
    xs, ys = [], []
    for _, f, occ, act in rs:
        z = (f - mean) / std
        for end in range(WINDOW, len(f) + 1, stride):
            xs.append(z[end - WINDOW:end])
            ys.append([occ[end - 1], act[end - 1]])
    return np.stack(xs).astype(np.float32), np.array(ys, np.int64)


def loss(y, out):
    y = tf.cast(y, tf.int32)
    occ = tf.keras.losses.sparse_categorical_crossentropy(y[:, 0], out[:, :2], from_logits=True)
    act = tf.keras.losses.sparse_categorical_crossentropy(y[:, 1], out[:, 2:], from_logits=True)
    return occ + act


def comfort(batch=None):
    x = K.Input((WINDOW, 6), batch_size=batch)
    h = x
    for d in (1, 2, 4):
        h = K.Conv1D(24, 3, dilation_rate=d, padding="causal", activation="relu")(h)
    pooled = K.Concatenate()([tf.reduce_mean(h, axis=1), h[:, -1, :]])
    return tf.keras.Model(x, K.Dense(6)(K.Dense(32, activation="relu")(pooled)))


def scores(confusion, names):
    p = {n: round(float(confusion[c, c] / max(confusion[:, c].sum(), 1)), 3) for c, n in enumerate(names)}
    r = {n: round(float(confusion[c, c] / max(confusion[c].sum(), 1)), 3) for c, n in enumerate(names)}
    return {"precision": p, "recall": r, "confusion_rows_truth_cols_predicted": confusion.tolist()}


def evaluate(model, test, mean, std):
    occ_c, act_c = np.zeros((2, 2), np.int64), np.zeros((4, 4), np.int64)
    for _, f, occ, act in test:
        z = ((f - mean) / std).astype(np.float32)
        for e in range(WINDOW, len(f) + 1, 3):
            o = model(z[e - WINDOW:e])
            occ_c[occ[e - 1], int(np.argmax(o[:2]))] += 1
            act_c[act[e - 1], int(np.argmax(o[2:]))] += 1
    return {
        "windows": int(occ_c.sum()),
        "occupancy": dict(scores(occ_c, ["empty", "occupied"]), accuracy=round(float(np.trace(occ_c) / occ_c.sum()), 3)),
        "action": dict(scores(act_c, simulate.ACTIONS), accuracy=round(float(np.trace(act_c) / act_c.sum()), 3)),
    }


def write_sample(room, model, mean, std):
    seed, f, occ, act = room
    day = f[2 * 1440:3 * 1440]  # the third day: a weekday
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    day.astype("<f4").tofile(DATA_DIR / "room_day.f32")
    z = ((day - mean) / std).astype(np.float32)
    expected = {
        "about": f"simulate.run({seed}), its third day (1440 minutes); the int8 model's outputs in "
                 f"LiteRT's reference kernels for each {WINDOW}-minute window, in order, made by "
                 "guest-models/smart-home/train/train.py",
        "rows": len(day),
        "window": WINDOW,
        "outputs": [model(z[e - WINDOW:e]).tolist() for e in range(WINDOW, len(day) + 1)],
        "occupancy_truth": occ[2 * 1440:3 * 1440].tolist(),
        "action_truth": act[2 * 1440:3 * 1440].tolist(),
    }
    (DATA_DIR / "expected.json").write_text(json.dumps(expected) + "\n")


def main():
    tf.keras.utils.set_random_seed(42)
    train, val, test = rooms(range(0, 120)), rooms(range(500, 520)), rooms(range(900, 940))
    allf = np.concatenate([f for _, f, _, _ in train])
    mean, std = allf.mean(0).astype(np.float32), (allf.std(0) + 1e-6).astype(np.float32)
    xtr, ytr = windows(train, 3, mean, std)
    xva, yva = windows(val, 9, mean, std)
    print("train windows", len(xtr), "occupied", ytr[:, 0].mean(), "actions", np.bincount(ytr[:, 1], minlength=4))
    m = comfort()
    m.compile(optimizer=tf.keras.optimizers.Adam(2e-3), loss=loss)
    m.fit(xtr, ytr, batch_size=512, epochs=6, validation_data=(xva, yva), verbose=2)
    one = comfort(batch=1)
    one.set_weights(m.get_weights())
    rng = np.random.default_rng(0)
    data = convert(one, xtr[rng.choice(len(xtr), 512, replace=False)])
    MODEL_DIR.mkdir(exist_ok=True)
    (MODEL_DIR / "comfort.tflite").write_bytes(data)
    np.concatenate([mean, std]).astype("<f4").tofile(MODEL_DIR / "norm.bin")
    model = Int8Model(data)
    metrics = evaluate(model, test, mean, std)
    metrics["model_bytes"] = len(data)
    print(json.dumps(metrics, indent=1))
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    write_sample(test[0], model, mean, std)


def sample_only():
    norm = np.fromfile(MODEL_DIR / "norm.bin", "<f4")
    write_sample(rooms([900])[0], Int8Model((MODEL_DIR / "comfort.tflite").read_bytes()), norm[:6], norm[6:])


if __name__ == "__main__":
    sample_only() if "--sample-only" in sys.argv else main()
