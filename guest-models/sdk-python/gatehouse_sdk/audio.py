"""Audio front ends on the host (``gatehouse:dsp/audio``): framing,
windows, FFT, mel filterbanks, logarithm and DCT, computed natively with
the same code the Rust SDK compiles into plugins, so Python need not do the
heavy arithmetic in the interpreter::

    from gatehouse_sdk import audio

    mfcc = audio.FrontEnd(frame=480, hop=320, fft=512, window="hann",
                          mel=(40, 16000, 20.0, 4000.0), log_offset=1e-6, dct=10)
    features = mfcc.features(samples)     # frames x 10, time-major

Every call counts against the plugin's tensor quota and deadline. A plugin
that uses this module targets the ``gatehouse:plugin/toolkit@0.2.0`` world
(``gatehouse_build.py --toolkit``).
"""

from typing import List, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import audio as _wa

from . import invalid_config, kernel_error

_WINDOWS = {
    "hann": _wa.Window.HANN_PERIODIC,
    "hamming": _wa.Window.HAMMING_SYMMETRIC,
    "none": _wa.Window.RECTANGULAR,
}
_MAGNITUDES = {"amplitude": _wa.Magnitude.AMPLITUDE, "power": _wa.Magnitude.POWER}


def _message(e: Err) -> str:
    return f"{type(e.value).__name__.split('_')[-1]}: {getattr(e.value, 'value', '')}"


class FrontEnd:
    """A front end prepared on the host. ``window`` is ``hann`` (periodic),
    ``hamming`` (symmetric) or ``none``; ``magnitude`` is ``amplitude`` or
    ``power``; ``mel`` is ``(bands, sample_rate, low_hz, high_hz)``."""

    def __init__(
        self,
        frame: int,
        hop: int,
        fft: int,
        window: str = "hann",
        magnitude: str = "amplitude",
        mel: Optional[Tuple[int, float, float, float]] = None,
        log_offset: Optional[float] = None,
        dct: Optional[int] = None,
        clip: Optional[int] = None,
        peak_normalize: bool = False,
    ):
        if window not in _WINDOWS or magnitude not in _MAGNITUDES:
            raise ValueError(f"window {window!r} or magnitude {magnitude!r} is unknown")
        bands = None
        if mel is not None:
            n, rate, lo, hi = mel
            bands = _wa.MelBands(bands=n, sample_rate=float(rate), low_hz=float(lo), high_hz=float(hi))
        config = _wa.Config(
            clip=clip,
            peak_normalize=peak_normalize,
            frame=frame,
            hop=hop,
            fft=fft,
            window=_WINDOWS[window],
            magnitude=_MAGNITUDES[magnitude],
            mel=bands,
            log_offset=None if log_offset is None else float(log_offset),
            dct=dct,
        )
        try:
            self._fe = _wa.FrontEnd.create(config)
        except Err as e:
            raise invalid_config(f"the front end was refused: {_message(e)}")

    def shape(self, samples: int) -> List[int]:
        """``[frames, values per frame]`` for ``samples`` input samples."""
        return self._fe.output_shape(samples)

    def features(self, samples: Sequence[float]) -> List[float]:
        """Features of samples in [-1, 1], time-major."""
        try:
            return self._fe.float(samples if isinstance(samples, list) else list(samples))
        except Err as e:
            raise kernel_error(_message(e))

    def pcm16(self, samples: Sequence[int]) -> List[float]:
        """Features of 16-bit integer samples (divided by 32768 on the host)."""
        try:
            return self._fe.pcm16(samples if isinstance(samples, list) else list(samples))
        except Err as e:
            raise kernel_error(_message(e))
