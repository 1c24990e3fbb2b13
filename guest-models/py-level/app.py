"""`py-level`: the loudness of a WAV, as a vendor would write it in Python
with the Gatehouse SDK.

The level is the loudest 100 ms window's RMS in dBFS, computed in Python
(light glue). The three classes' scores are the host's int8 SOFTMAX over
logits that peak at each class's typical level, so the plugin also shows
how Python hands arithmetic to the host's kernels.
"""

import math

from gatehouse_sdk import Plugin, descriptor, inference, invalid_config, nn, wav

LABELS = ["silence", "quiet", "loud"]
# Where each class peaks, in dBFS.
CENTRES = [-70.0, -35.0, -10.0]


class WitWorld(Plugin):
    def describe(self):
        return descriptor(
            "py-level",
            "0.1.0",
            "Loudness of a WAV: its loudest 100 ms in dBFS (Python SDK example)",
            inputs=["wav"],
            labels=LABELS,
        )

    def init(self, config):
        super().init(config)
        try:
            window_ms = float(self.settings.get("window-ms", "100"))
        except ValueError:
            raise invalid_config(f"window-ms={self.settings['window-ms']!r} is not a number")
        if not 1 <= window_ms <= 10_000:
            raise invalid_config("window-ms must be within 1..10000")
        # A new WitWorld serves each call: keep settings on the class.
        WitWorld.window_ms = window_ms
        print(f"py-level ready: {window_ms} ms windows")

    def process(self, data):
        rate, samples = wav.decode(data)
        level = loudest_window_dbfs(samples, max(1, int(rate * self.window_ms / 1000)))
        logits = [-abs(level - c) / 5.0 for c in CENTRES]
        probs = nn.softmax(logits)
        best = max(range(len(LABELS)), key=lambda i: probs[i])
        return inference(
            label=LABELS[best],
            scores=dict(zip(LABELS, probs)),
            score=level,
        )


def loudest_window_dbfs(samples, window):
    """RMS of the loudest non-overlapping window, in dBFS (-120 for silence)."""
    loudest = 0.0
    for start in range(0, max(1, len(samples) - window + 1), window):
        chunk = samples[start : start + window]
        if chunk:
            loudest = max(loudest, sum(s * s for s in chunk) / len(chunk))
    return 10 * math.log10(loudest) if loudest > 1e-12 else -120.0
