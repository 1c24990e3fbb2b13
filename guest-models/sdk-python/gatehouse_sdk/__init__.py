"""Gatehouse plugins in Python.

A plugin is a module with a ``WitWorld`` class (what componentize-py
exports); derive it from :class:`Plugin` and fill in ``describe``, ``init``
and ``process``::

    from gatehouse_sdk import Plugin, descriptor, inference, wav

    class WitWorld(Plugin):
        def describe(self):
            return descriptor("level", "0.1.0", "Loudness of a WAV", inputs=["wav"])

        def process(self, data):
            rate, samples = wav.decode(data)
            return inference(score=max(samples))

Build it with ``python gatehouse_build.py app -o level.wasm`` (which
runs componentize-py against the Gatehouse WIT) and try it with
``gatehouse run level.wasm --input clip.wav``.

The host grants WASI with nothing ambient: ``print`` and ``logging`` go to
the operator's log, ``time`` and ``os.urandom`` work, files exist only under
``/state`` when the ``state`` capability is granted, and there is no
network. Heavy arithmetic belongs in the host's kernels: see :mod:`.nn`.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import log, types

__all__ = [
    "Plugin",
    "PluginError",
    "descriptor",
    "inference",
    "invalid_input",
    "invalid_config",
    "kernel_error",
    "settings",
]

_KINDS = {
    "wav": types.InputKind.WAV,
    "image": types.InputKind.IMAGE,
    "raw-tensor": types.InputKind.RAW_TENSOR,
    "log-mel": types.InputKind.LOG_MEL,
}


class PluginError(Exception):
    """Base of the errors a plugin returns to the host (not a trap)."""


def invalid_input(message: str) -> Err:
    """The error for an input the plugin cannot take: ``raise invalid_input(...)``."""
    return Err(types.PluginError_InvalidInput(message))


def invalid_config(message: str) -> Err:
    """The error for settings or a model the plugin cannot take."""
    return Err(types.PluginError_InvalidConfig(message))


def kernel_error(message: str) -> Err:
    """The error for a host kernel that refused (a quota, a shape)."""
    return Err(types.PluginError_Kernel(message))


def descriptor(
    name: str,
    version: str,
    summary: str,
    inputs: Sequence[str] = ("raw-tensor",),
    labels: Sequence[str] = (),
) -> types.Descriptor:
    """What ``describe`` returns. ``inputs`` are ``wav``, ``image``,
    ``raw-tensor`` or ``log-mel``."""
    try:
        kinds = [_KINDS[k] for k in inputs]
    except KeyError as e:
        raise ValueError(f"unknown input kind {e.args[0]!r}; known: {', '.join(_KINDS)}")
    return types.Descriptor(
        name=name,
        version=version,
        summary=summary,
        input_kinds=kinds,
        labels=list(labels),
    )


def inference(
    label: Optional[str] = None,
    scores: Optional[Dict[str, float]] = None,
    score: Optional[float] = None,
    output: Optional[bytes] = None,
) -> types.Inference:
    """What ``process`` returns: a label, per-label scores, one score, raw bytes."""
    return types.Inference(
        label=label,
        scores=[types.LabelScore(label=k, score=float(v)) for k, v in (scores or {}).items()],
        score=None if score is None else float(score),
        events=[],
        output=output,
    )


def settings(config: types.Config) -> Dict[str, str]:
    """The ``init`` settings as a dict."""
    return {s.key: s.value for s in config.settings}


class Plugin:
    """Defaults for the plugin world: ``init`` keeps the settings in
    ``self.settings`` and the model bytes in ``self.model``; ``stats`` is
    empty. Override ``describe`` and ``process``.

    componentize-py makes a new ``WitWorld`` object for every call, so what
    ``init`` prepares must live on the class (``type(self).x = ...``) or in
    the module, not on ``self``; these two do."""

    settings: Dict[str, str] = {}
    model: Optional[bytes] = None

    def describe(self) -> types.Descriptor:
        raise NotImplementedError("a plugin describes itself")

    def init(self, config: types.Config) -> None:
        cls = type(self)
        cls.settings = settings(config)
        cls.model = config.model

    def process(self, input: bytes) -> types.Inference:
        raise NotImplementedError("a plugin processes its input")

    def stats(self) -> List[types.Stat]:
        return []


def info(message: str) -> None:
    """A line in the operator's log (``print`` goes there too)."""
    log.log(log.Level.INFO, message)
