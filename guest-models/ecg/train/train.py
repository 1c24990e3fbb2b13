#!/usr/bin/env python3
"""Train the `ecg` plugin's beat classifier on MIT-BIH record 100, quantize it to int8, evaluate
the int8 model as the plugin runs it, and write what the plugin and its tests use.

  python3 guest-models/ecg/train/train.py                 (about 3 minutes on 2 cores)
  python3 guest-models/ecg/train/train.py --sample-only   (the sample alone)

Pinned: tensorflow-cpu 2.21.0, tf-keras 2.21.0 (TF_USE_LEGACY_KERAS=1 is set here, as for the
other plugins' scripts), ai-edge-litert 2.3.0, wfdb 4.3.1, numpy 2, Python 3.11. Seeded
throughout.

Data: record 100 of the MIT-BIH Arrhythmia Database (mitdb/, lead MLII, 360 Hz, 30 min). Its
beats are 2,239 normal (N), 33 atrial premature (A) and one premature ventricular (V): two
classes, N and A, are all it supports. The beats are the ones the plugin's own detector finds
(pipeline.py), each labelled with the annotation within 150 ms of it.

Split by time, never by beat: training is minutes 0-21, the held-out test minutes 21-30
(22 and 11 A beats). With so few A beats there is no validation span: the epochs and the
oversampling were fixed before the test span was looked at.

Model: the 256-sample window around the beat (pipeline.py) as 256x1 float32 in mV, through two
multi-scale blocks (parallel Conv1D of kernels 3, 5 and 7, concatenated, max-pooled by 4), a
Conv1D(32, 3), Flatten, Dense(32), Dense(2): N and A logits. int8 with float32 input and output.

Writes:
  guest-models/ecg/model/beats.tflite
  guest-models/ecg/train/metrics.json
  examples/data/ecg/mlii_21m.f32    held-out minutes 21:00-24:30 of lead MLII, f32 LE in mV
  examples/data/ecg/expected.json   its beats: R sample, annotation, LiteRT's outputs
"""
import json
import os
import pathlib
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import wfdb

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "training"))
import pipeline  # noqa: E402
from int8 import Int8Model, convert  # noqa: E402

ROOT = HERE.parents[2]
MODEL_DIR = HERE.parent / "model"
DATA_DIR = ROOT / "examples/data/ecg"
CLASSES = ["N", "A"]
SPLIT = 21 * 60 * pipeline.FS
SAMPLE = (21 * 60 * pipeline.FS, int(24.5 * 60 * pipeline.FS))
MATCH = 54  # 150 ms, as the usual beat-by-beat comparison (ANSI/AAMI EC57) has it
K = tf.keras.layers


def record():
    """Lead MLII in mV as float32, and the beat annotations (sample, symbol)."""
    r = wfdb.rdrecord(str(HERE / "mitdb/100"), channels=[0])
    a = wfdb.rdann(str(HERE / "mitdb/100"), "atr")
    beats = [(int(s), y) for s, y in zip(a.sample, a.symbol) if y in "NAV"]
    return r.p_signal[:, 0].astype(np.float32), beats


def match(rs, beats):
    """The annotation symbol of each detected R (None: no beat within 150 ms), and the
    annotated beats no detection matched."""
    ann = np.array([s for s, _ in beats])
    labels, used = [], set()
    for r in rs:
        i = int(np.searchsorted(ann, r))
        near = [k for k in (i - 1, i) if 0 <= k < len(ann) and abs(ann[k] - r) <= MATCH]
        k = min(near, key=lambda k: abs(ann[k] - r)) if near else None
        labels.append(beats[k][1] if k is not None else None)
        if k is not None:
            used.add(k)
    return labels, [b for k, b in enumerate(beats) if k not in used]


def block(x, filters):
    branches = [K.Conv1D(filters, k, padding="same", activation="relu")(x) for k in (3, 5, 7)]
    return K.MaxPooling1D(4)(K.Concatenate()(branches))


def classifier(batch=None):
    x = K.Input((pipeline.WINDOW, 1), batch_size=batch)
    h = block(block(x, 8), 12)
    h = K.Conv1D(32, 3, activation="relu")(h)
    h = K.Dense(32, activation="relu")(K.Flatten()(h))
    return tf.keras.Model(x, K.Dense(len(CLASSES))(h))


def augment(x, y, rng, copies):
    """Every A beat `copies` more times, each scaled in amplitude by 0.85-1.15, shifted by up to
    3 samples and with 10 uV of noise: the detector's R is within a few samples and amplitude
    drifts with posture; nothing here invents a morphology."""
    xs, ys = [x], [y]
    for i in np.flatnonzero(y == 1):
        for _ in range(copies):
            w = np.roll(x[i], rng.integers(-3, 4)) * rng.uniform(0.85, 1.15)
            xs.append((w + rng.normal(0, 0.01, w.shape)).astype(np.float32)[None])
            ys.append(np.array([1]))
    return np.concatenate(xs), np.concatenate(ys)


def scores(confusion):
    p = {n: round(float(confusion[c, c] / max(confusion[:, c].sum(), 1)), 3) for c, n in enumerate(CLASSES)}
    r = {n: round(float(confusion[c, c] / max(confusion[c].sum(), 1)), 3) for c, n in enumerate(CLASSES)}
    return {"precision": p, "recall": r, "confusion_rows_truth_cols_predicted": confusion.tolist()}


def evaluate(model, rs, ws, labels, missed, lo, hi):
    """Beat by beat over samples [lo, hi): the int8 model's class against the annotation."""
    c = np.zeros((2, 2), np.int64)
    other, false_beats = [], 0
    for r, w, y in zip(rs, ws, labels):
        if not lo <= r < hi:
            continue
        got = CLASSES[int(np.argmax(model(w[:, None])))]
        if y is None:
            false_beats += 1
        elif y in CLASSES:
            c[CLASSES.index(y), CLASSES.index(got)] += 1
        else:
            other.append({"r": int(r), "annotation": y, "classified": got})
    return dict(
        scores(c),
        beats=int(c.sum()),
        detections_without_a_beat=false_beats,
        beats_not_detected=[list(b) for b in missed if lo <= b[0] < hi],
        other_beats=other,
    )


def write_sample(x, beats, model):
    lo, hi = SAMPLE
    part = x[lo:hi]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    part.astype("<f4").tofile(DATA_DIR / "mlii_21m.f32")
    found = pipeline.beats(part)
    labels, missed = match([r + lo for r, _ in found], beats)
    expected = {
        "about": "MIT-BIH record 100, lead MLII in mV, samples 453600-529200 (minutes 21:00-24:30, "
                 "in the held-out span), streamed from its first sample through the plugin's "
                 "pipeline (guest-models/ecg/train/pipeline.py); for each beat its R sample, "
                 "the annotation within 150 ms and the int8 model's outputs in LiteRT's reference "
                 "kernels; made by guest-models/ecg/train/train.py",
        "fs": pipeline.FS,
        "samples": len(part),
        "beats": [
            {"r": int(r), "annotation": y, "outputs": model(w[:, None]).tolist()}
            for (r, w), y in zip(found, labels)
        ],
        "annotated_beats_not_detected": [[s - lo, y] for s, y in missed if lo <= s < hi],
    }
    (DATA_DIR / "expected.json").write_text(json.dumps(expected) + "\n")


def main():
    tf.keras.utils.set_random_seed(42)
    x, beats = record()
    found = pipeline.beats(x)
    rs = np.array([r for r, _ in found])
    ws = np.stack([w for _, w in found])
    labels, missed = match(rs, beats)
    train = [i for i, (r, y) in enumerate(zip(rs, labels)) if r < SPLIT and y in CLASSES]
    xtr = ws[train][:, :, None]
    ytr = np.array([CLASSES.index(labels[i]) for i in train])
    print("train beats", np.bincount(ytr), "detected", len(rs), "annotated", len(beats), "missed", len(missed))
    xtr, ytr = augment(xtr, ytr, np.random.default_rng(0), 30)
    m = classifier()
    m.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(xtr, ytr, batch_size=64, epochs=25, shuffle=True, verbose=2)
    one = classifier(batch=1)
    one.set_weights(m.get_weights())
    rng = np.random.default_rng(1)
    data = convert(one, xtr[rng.choice(len(xtr), 512, replace=False)])
    MODEL_DIR.mkdir(exist_ok=True)
    (MODEL_DIR / "beats.tflite").write_bytes(data)
    model = Int8Model(data)
    metrics = {
        "record": "MIT-BIH 100, lead MLII",
        "detector": {"annotated_beats": len(beats), "detected": len(rs),
                     "detections_without_a_beat": sum(y is None for y in labels),
                     "beats_not_detected": [list(b) for b in missed]},
        "train_minutes_0_21": evaluate(model, rs, ws, labels, missed, 0, SPLIT),
        "test_minutes_21_30": evaluate(model, rs, ws, labels, missed, SPLIT, len(x)),
        "model_bytes": len(data),
        "parameters": int(m.count_params()),
    }
    print(json.dumps(metrics, indent=1))
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    write_sample(x, beats, model)


def sample_only():
    x, beats = record()
    write_sample(x, beats, Int8Model((MODEL_DIR / "beats.tflite").read_bytes()))


if __name__ == "__main__":
    sample_only() if "--sample-only" in sys.argv else main()
