//! FULLY_CONNECTED: int8 activations, int8 weights `[units, depth]` (per
//! tensor or symmetric per channel), int32 bias.

use gatehouse_kernels::{Activation, FullyConnectedSpec, KernelSet, activation_range};

use super::operand::{act_i8, bias_i32, channel_requant, symmetric, weights_i8};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// A fully connected layer over every `depth` values of the input.
#[derive(Clone, Debug)]
pub struct FullyConnected {
    pub input: TensorKey,
    pub weights: TensorKey,
    pub bias: Option<TensorKey>,
    pub output: TensorKey,
    pub activation: Activation,
}

impl Operator for FullyConnected {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let rounding = cx.semantics.fully_connected();
        let (di, s_in, z_in) = act_i8(cx.st, self.input, "fully_connected input")?;
        let in_elems = di.elements();
        let (dout, s_out, z_out) = act_i8(cx.st, self.output, "fully_connected output")?;
        let out_elems = dout.elements();
        let (units, depth) = match cx.st.desc(self.weights)?.shape.as_slice() {
            &[u, d] => (u, d),
            s => {
                return Err(NnFault::invalid(format!(
                    "weights must be [units, depth], are {s:?}"
                )));
            }
        };
        if depth == 0 || in_elems % depth != 0 || out_elems != (in_elems / depth) * units {
            return Err(NnFault::invalid(format!(
                "input of {in_elems} and output of {out_elems} values do not fit weights [{units}, {depth}]"
            )));
        }
        let woff = cx
            .st
            .desc(self.weights)?
            .quant
            .as_ref()
            .and_then(|q| q.zero_points.first())
            .map_or(0, |z| z.saturating_neg());
        let layout = cx.ks.layout;
        cx.stage(
            gatehouse_kernels::FullyConnected::heap_bytes_for(depth, units, woff, layout),
            "fully_connected weights",
        )?;
        let (w, wscales, wzps) =
            weights_i8(cx.st, self.weights, "fully_connected weights", units, 0)?;
        if wzps.len() > 1 {
            symmetric(&wzps, "per-channel weights")?;
        }
        let (act_min, act_max) = activation_range(self.activation, s_out, z_out);
        let k = gatehouse_kernels::FullyConnected::new(FullyConnectedSpec {
            batches: in_elems / depth,
            depth,
            units,
            weights: w,
            bias: bias_i32(cx.st, self.bias, units)?,
            requant: channel_requant(s_in, &wscales, s_out, rounding),
            input_offset: -z_in,
            weights_offset: -wzps[0],
            output_offset: z_out,
            act_min,
            act_max,
            rounding,
            layout,
        })?;
        Ok(Built::new(
            "fully_connected",
            Kernel(k),
            vec![self.input],
            self.output,
        ))
    }
}

struct Kernel(gatehouse_kernels::FullyConnected);

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| (ks.fully_connected)(&self.0, i, out))
    }

    fn held_bytes(&self) -> u64 {
        self.0.heap_bytes() as u64
    }

    fn macs(&self) -> u64 {
        self.0.macs()
    }

    fn fully_connected(&self) -> Option<&gatehouse_kernels::FullyConnected> {
        Some(&self.0)
    }
}
