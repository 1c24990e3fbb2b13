"""Int8 TensorFlow Lite models from Python, in a few lines::

    from gatehouse_sdk import tflite

    model = tflite.Model(MODEL_BYTES)
    scores = model.run(features)          # floats in, floats out

The model is parsed by the TFLite loader component composed into the
plugin (``gatehouse:tflite/model``: the Rust SDK's loader, inside the
sandbox), and runs as a plan on the host's int8 kernels. A plugin that
uses this module targets the ``gatehouse:plugin/toolkit@0.2.0`` world and
is built with ``gatehouse_build.py --toolkit``, which plugs the loader in.
"""

from array import array
from typing import List, Sequence

from componentize_py_types import Err
from wit_world.imports import model as _wm
from wit_world.imports import ops

from . import invalid_config, kernel_error

_SEMANTICS = {
    "reference": ops.Semantics.TFLITE_REFERENCE,
    "micro": ops.Semantics.TFLITE_MICRO,
}


def _message(e: Err) -> str:
    return f"{type(e.value).__name__.split('_')[-1].lower()}: {getattr(e.value, 'value', '')}"


class Model:
    """A loaded model: ``input`` and ``output`` describe its tensors
    (``shape``, ``byte_len``, ``scale``, ``zero_point``)."""

    def __init__(self, data: bytes, semantics: str = "reference"):
        if semantics not in _SEMANTICS:
            raise ValueError(f"semantics {semantics!r}: expected one of {', '.join(_SEMANTICS)}")
        try:
            self._model = _wm.Model.load(data, _SEMANTICS[semantics])
        except Err as e:
            raise invalid_config(f"the model did not load: {_message(e)}")
        self.input = self._model.input()
        self.output = self._model.output()

    def operators(self) -> List[str]:
        return self._model.operators()

    def arena_bytes(self) -> int:
        return self._model.arena_bytes()

    def invoke(self, data: bytes) -> bytes:
        """Raw int8 input tensors in, raw output tensors out."""
        try:
            return self._model.invoke(data)
        except Err as e:
            raise kernel_error(_message(e))

    def quantize(self, values: Sequence[float], truncate: bool = False) -> bytes:
        """``values`` as the input's int8: rounded half away from zero (TFLite's
        QUANTIZE) or, with ``truncate``, cut toward zero (a C cast, as some
        reference pipelines do), then clamped."""
        s, z = self.input.scale, self.input.zero_point
        out = array("b")
        for v in values:
            q = v / s + z
            q = int(q) if truncate else (int(q + 0.5) if q >= 0 else -int(-q + 0.5))
            out.append(-128 if q < -128 else 127 if q > 127 else q)
        return out.tobytes()

    def dequantize(self, data: bytes) -> List[float]:
        """The output's int8 bytes as reals."""
        raw = array("b")
        raw.frombytes(data)
        s, z = self.output.scale, self.output.zero_point
        return [(q - z) * s for q in raw]

    def run(self, values: Sequence[float], truncate: bool = False) -> List[float]:
        """Quantize ``values`` to the input, run, and dequantize the output."""
        return self.dequantize(self.invoke(self.quantize(values, truncate)))
