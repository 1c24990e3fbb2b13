"""What the plugins' training scripts share: converting a trained Keras model to a fully int8
TFLite model with float32 input and output, and running it in LiteRT's reference kernels (the
semantics the plugins reproduce bit for bit).

Pinned with the scripts: tensorflow-cpu 2.21.0, tf-keras 2.21.0, ai-edge-litert 2.3.0.
"""
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def convert(model, representative):
    """int8 weights and activations, float32 input and output (the model's own QUANTIZE and
    DEQUANTIZE), calibrated on `representative` (windows without the batch axis)."""
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([w[None]] for w in representative)
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return c.convert()


class Int8Model:
    """A converted model in LiteRT's reference kernels, one window per call. State tensors (an
    LSTM's) are reset before each window, as the stateless Keras layer and the host's operator
    have it."""

    def __init__(self, data):
        self.it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        self.it.allocate_tensors()
        self.i = self.it.get_input_details()[0]["index"]
        self.o = self.it.get_output_details()[0]["index"]

    def __call__(self, window):
        self.it.reset_all_variables()
        self.it.set_tensor(self.i, window[None])
        self.it.invoke()
        return self.it.get_tensor(self.o)[0].copy()
