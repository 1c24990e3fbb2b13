//! `gatehouse:dsp` host functions: audio front ends run natively for a
//! plugin, on the same view of its state as `gatehouse:nn` ([`NnView`]),
//! because they draw on the same tensor quota and deadline.

use std::time::Instant;

use gatehouse_dsp::front_end::{Config, FrontEnd, Magnitude, MelBands, Window};
use gatehouse_nn::{NnFault, Work};
use wasmtime::component::Resource;

use crate::bindings::NnCallError;
use crate::bindings::dsp::gatehouse::dsp::audio as wa;
use crate::nn_host::NnView;

/// A front end in an instance's resource table, with the bytes its tables
/// were charged, returned to the quota when the plugin drops it.
pub struct FrontEndSlot {
    front_end: FrontEnd,
    charged: u64,
}

fn config_from_wit(c: wa::Config) -> Config {
    Config {
        clip: c.clip.map(|n| n as usize),
        peak_normalize: c.peak_normalize,
        frame: c.frame as usize,
        hop: c.hop as usize,
        fft: c.fft as usize,
        window: match c.window {
            wa::Window::HannPeriodic => Window::HannPeriodic,
            wa::Window::HammingSymmetric => Window::HammingSymmetric,
            wa::Window::Rectangular => Window::Rectangular,
        },
        magnitude: match c.magnitude {
            wa::Magnitude::Amplitude => Magnitude::Amplitude,
            wa::Magnitude::Power => Magnitude::Power,
        },
        mel: c.mel.map(|m| MelBands {
            bands: m.bands as usize,
            sample_rate: m.sample_rate,
            low_hz: m.low_hz,
            high_hz: m.high_hz,
        }),
        log_offset: c.log_offset,
        dct: c.dct.map(|k| k as usize),
    }
}

/// A floating-point operation costs about as much host time as an element
/// of a data-movement operator: both are a load, some arithmetic and a
/// store, without SIMD here.
fn work_of_flops(flops: u64) -> Work {
    Work {
        macs: 0,
        elements: flops,
    }
}

impl NnView<'_> {
    /// Features of `len` samples: charged, admitted against the deadline as
    /// a whole, then checked against it between frames.
    fn features(
        &mut self,
        slot: &Resource<FrontEndSlot>,
        len: usize,
        samples: impl ExactSizeIterator<Item = f64>,
    ) -> Result<Vec<f64>, NnCallError> {
        let deadline = self.nn.deadline();
        let mut budget = self.budget();
        let front_end = &mut self.table.get_mut(slot)?.front_end;
        let config = front_end.config();
        let clip = config.clip.unwrap_or(len);
        let frames = config.frames(clip);
        let values = frames.saturating_mul(config.values_per_frame());
        let bins = config.fft / 2 + 1;
        let held = 8u64.saturating_mul(
            (clip as u64)
                .saturating_add(values as u64)
                .saturating_add(2 * bins as u64),
        );
        // Memory first: a result that cannot fit is an error the plugin can
        // handle, whatever its time would have been.
        self.nn
            .tensors
            .charge(held, "a DSP front end's clip and features")?;
        if let Err(e) = budget.admit(
            work_of_flops(config.flops_per_frame().saturating_mul(frames as u64)),
            || format!("a DSP front end over {frames} frames"),
        ) {
            self.nn.tensors.uncharge(held);
            return Err(e.into());
        }
        let clip = front_end.prepare(samples);
        let done = front_end.frames_of(&clip, |_| deadline.is_none_or(|d| Instant::now() < d));
        self.nn.tensors.uncharge(held);
        done.map_err(|(f, _)| {
            NnFault::Deadline(format!(
                "a DSP front end reached the deadline after {f} of {frames} frames"
            ))
            .into()
        })
    }
}

impl wa::HostFrontEnd for NnView<'_> {
    fn create(&mut self, config: wa::Config) -> Result<Resource<FrontEndSlot>, NnCallError> {
        let config = config_from_wit(config);
        config.validate().map_err(|e| NnFault::Invalid(e.0))?;
        let bytes = config.table_bytes() as u64;
        // Making the tables costs a few operations per 8-byte weight (two
        // divisions and a clamp in the filterbank; a cosine per DCT weight,
        // of which there are far fewer).
        self.budget().admit(work_of_flops(bytes / 2), || {
            "making a DSP front end's tables".into()
        })?;
        self.nn.tensors.charge(bytes, "a DSP front end's tables")?;
        let front_end = match FrontEnd::new(config) {
            Ok(f) => f,
            Err(e) => {
                self.nn.tensors.uncharge(bytes);
                return Err(NnFault::Invalid(e.0).into());
            }
        };
        match self.table.push(FrontEndSlot {
            front_end,
            charged: bytes,
        }) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.nn.tensors.uncharge(bytes);
                Err(e.into())
            }
        }
    }

    fn output_shape(
        &mut self,
        slot: Resource<FrontEndSlot>,
        samples: u32,
    ) -> wasmtime::Result<Vec<u32>> {
        let c = self.table.get(&slot)?.front_end.config();
        let frames = u32::try_from(c.frames(samples as usize)).unwrap_or(u32::MAX);
        let values = u32::try_from(c.values_per_frame()).unwrap_or(u32::MAX);
        Ok(vec![frames, values])
    }

    fn pcm16(
        &mut self,
        slot: Resource<FrontEndSlot>,
        samples: Vec<i16>,
    ) -> Result<Vec<f64>, NnCallError> {
        let len = samples.len();
        self.features(&slot, len, samples.iter().map(|&s| f64::from(s) / 32768.0))
    }

    fn float(
        &mut self,
        slot: Resource<FrontEndSlot>,
        samples: Vec<f64>,
    ) -> Result<Vec<f64>, NnCallError> {
        let len = samples.len();
        self.features(&slot, len, samples.into_iter())
    }

    fn drop(&mut self, slot: Resource<FrontEndSlot>) -> wasmtime::Result<()> {
        let s = self.table.delete(slot)?;
        self.nn.tensors.uncharge(s.charged);
        Ok(())
    }
}

/// Errors convert as `gatehouse:nn`'s do (`tensors::Host::convert_nn_error`):
/// the same WIT errors, and the same deadline trap.
impl wa::Host for NnView<'_> {}
