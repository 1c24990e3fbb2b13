"""The host's int8 kernels from Python: tensors live in host memory,
operators run natively, and Python only moves bytes and glues steps.

Everything here counts against the plugin's tensor quota and deadline;
a refusal raises :func:`gatehouse_sdk.kernel_error`, which the host reports
with the plugin's name.
"""

from array import array
from typing import List, Optional, Sequence

from componentize_py_types import Err
from wit_world.imports import ops, tensors

from . import kernel_error

INT8 = tensors.Dtype.INT8
INT32 = tensors.Dtype.INT32
FLOAT32 = tensors.Dtype.FLOAT32

_REFERENCE = ops.ExecOptions(semantics=ops.Semantics.TFLITE_REFERENCE)


def _host(call, *args):
    try:
        return call(*args)
    except Err as e:
        raise kernel_error(f"{type(e.value).__name__}: {getattr(e.value, 'value', '')}")


def tensor(
    shape: Sequence[int],
    dtype=INT8,
    scale: Optional[float] = None,
    zero_point: int = 0,
    data: Optional[bytes] = None,
) -> tensors.Tensor:
    """A host tensor, per-tensor quantized when ``scale`` is given, filled
    with ``data`` when given."""
    quant = None
    if scale is not None:
        quant = tensors.Quantization(scales=[scale], zero_points=[zero_point], axis=0)
    t = _host(
        tensors.Tensor.create,
        tensors.TensorDesc(dtype=dtype, shape=list(shape), quantization=quant),
    )
    if data is not None:
        _host(t.write, 0, data)
    return t


def quantize(values: Sequence[float], scale: float, zero_point: int) -> bytes:
    """Round half away from zero and clamp to int8, as TFLite's QUANTIZE."""
    out = array("b")
    for v in values:
        q = v / scale
        q = int(q + 0.5) if q >= 0 else -int(-q + 0.5)
        out.append(max(-128, min(127, q + zero_point)))
    return out.tobytes()


def dequantize(data: bytes, scale: float, zero_point: int) -> List[float]:
    raw = array("b")
    raw.frombytes(data)
    return [(q - zero_point) * scale for q in raw]


def execute(op) -> None:
    """Run one operator now, with TFLite's reference arithmetic."""
    _host(ops.execute, op, _REFERENCE)


def softmax(logits: Sequence[float], scale: float = 0.1, beta: float = 1.0) -> List[float]:
    """Probabilities of ``logits`` by the host's int8 SOFTMAX: the logits are
    quantized with ``scale``, the output has TFLite's fixed 1/256 scale."""
    n = len(logits)
    x = tensor([1, n], scale=scale, zero_point=0, data=quantize(logits, scale, 0))
    y = tensor([1, n], scale=1 / 256, zero_point=-128)
    execute(ops.Op_Softmax(ops.Softmax(input=x, output=y, beta=beta)))
    return dequantize(y.read(), 1 / 256, -128)
