"""`py-kws`: keyword spotting with the MLPerf Tiny DS-CNN, written in
Python as a vendor would write it with the Gatehouse SDK: the MFCCs from
the host's audio front end, the model through the TFLite loader, and the
rest in a few lines of Python.

The preprocessing is the MLPerf Tiny reference's (16 kHz, 1 s clip divided
by its largest sample, 49 frames of 480 samples every 320, periodic Hann,
|FFT| over 512 points, 40 HTK mel bands from 20 Hz to 4 kHz, ln(x + 1e-6),
DCT-II scaled by sqrt(2/40), the first 10 coefficients), and its int8 cast
truncates toward zero.
"""

from gatehouse_sdk import (
    Plugin,
    audio,
    descriptor,
    inference,
    invalid_config,
    invalid_input,
    tflite,
    wav,
)

from kws_model import DATA as MODEL
from pure_mfcc import mfcc as pure_python_mfcc

LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown"]
RATE = 16000


class WitWorld(Plugin):
    def describe(self):
        return descriptor(
            "py-kws",
            "0.1.0",
            "Keyword spotting (MLPerf Tiny DS-CNN) in Python: host MFCCs, TFLite via the loader",
            inputs=["wav"],
            labels=LABELS,
        )

    def init(self, config):
        super().init(config)
        # `frontend=python` computes the MFCCs in the interpreter instead of
        # on the host, to measure the difference.
        frontend = self.settings.get("frontend", "host")
        if frontend not in ("host", "python"):
            raise invalid_config(f"frontend={frontend!r}: expected host or python")
        WitWorld.frontend = frontend
        # A new WitWorld serves each call: keep what init makes on the class.
        WitWorld.model = tflite.Model(MODEL)
        WitWorld.mfcc = audio.FrontEnd(
            clip=RATE,
            peak_normalize=True,
            frame=480,
            hop=320,
            fft=512,
            window="hann",
            magnitude="amplitude",
            mel=(40, RATE, 20.0, 4000.0),
            log_offset=1e-6,
            dct=10,
        )

    def process(self, data):
        rate, samples = wav.decode(data)
        if rate != RATE:
            raise invalid_input(f"sample rate {rate} Hz; this model needs {RATE} Hz")
        if self.frontend == "host":
            features = self.mfcc.features(samples)
        else:
            features = pure_python_mfcc(samples)
        scores = self.model.dequantize(self.model.invoke(self.model.quantize(features, truncate=True)))
        best = max(range(len(LABELS)), key=lambda i: scores[i])
        return inference(label=LABELS[best], scores=dict(zip(LABELS, scores)))
