//! Shapes and sliding-window geometry with TFLite's padding rules.

use crate::error::{KernelError, ensure};

/// An NHWC shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Shape4 {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Shape4 {
    pub const fn new(n: usize, h: usize, w: usize, c: usize) -> Self {
        Shape4 { n, h, w, c }
    }

    /// Number of elements, or `None` on overflow.
    pub fn len(&self) -> Option<usize> {
        self.n
            .checked_mul(self.h)?
            .checked_mul(self.w)?
            .checked_mul(self.c)
    }

    #[inline(always)]
    pub fn offset(&self, n: usize, y: usize, x: usize, c: usize) -> usize {
        ((n * self.h + y) * self.w + x) * self.c + c
    }
}

/// TFLite's padding scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

/// Where a sliding window reads: kernel size, stride, dilation and the
/// padding TFLite derives for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Window {
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// Kernel, stride and dilation of a window, before padding is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub padding: Padding,
}

impl WindowSpec {
    /// TFLite's `ComputeOutSize` for one spatial dimension.
    pub fn out_size(
        padding: Padding,
        in_size: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> usize {
        let effective = (kernel - 1) * dilation + 1;
        match padding {
            Padding::Same => in_size.div_ceil(stride),
            Padding::Valid => (in_size + stride).saturating_sub(effective) / stride,
        }
    }

    /// Resolve padding for an `in_h`×`in_w` input and check that the output
    /// is `out_h`×`out_w`, as TFLite would have shaped it.
    pub fn resolve(
        &self,
        op: &'static str,
        in_h: usize,
        in_w: usize,
        out_h: usize,
        out_w: usize,
    ) -> Result<Window, KernelError> {
        ensure!(
            op,
            self.kernel_h > 0 && self.kernel_w > 0,
            "kernel size must be positive"
        );
        ensure!(
            op,
            self.stride_h > 0 && self.stride_w > 0,
            "stride must be positive"
        );
        ensure!(
            op,
            self.dilation_h > 0 && self.dilation_w > 0,
            "dilation must be positive"
        );
        ensure!(
            op,
            self.kernel_h <= 1 << 16 && self.kernel_w <= 1 << 16,
            "kernel size is implausibly large"
        );
        ensure!(
            op,
            self.dilation_h <= 1 << 16 && self.dilation_w <= 1 << 16,
            "dilation is implausibly large"
        );
        let want_h = Self::out_size(
            self.padding,
            in_h,
            self.kernel_h,
            self.stride_h,
            self.dilation_h,
        );
        let want_w = Self::out_size(
            self.padding,
            in_w,
            self.kernel_w,
            self.stride_w,
            self.dilation_w,
        );
        ensure!(
            op,
            want_h == out_h && want_w == out_w,
            "output is {out_h}x{out_w} but {:?} padding of a {in_h}x{in_w} input gives {want_h}x{want_w}",
            self.padding
        );
        let pad =
            |stride: usize, dilation: usize, in_size: usize, kernel: usize, out_size: usize| {
                let effective = (kernel - 1) * dilation + 1;
                let total = ((out_size.max(1) - 1) * stride + effective) as i64 - in_size as i64;
                (total / 2).max(0) as usize
            };
        let (pad_top, pad_left) = match self.padding {
            Padding::Valid => (0, 0),
            Padding::Same => (
                pad(self.stride_h, self.dilation_h, in_h, self.kernel_h, out_h),
                pad(self.stride_w, self.dilation_w, in_w, self.kernel_w, out_w),
            ),
        };
        Ok(Window {
            kernel_h: self.kernel_h,
            kernel_w: self.kernel_w,
            stride_h: self.stride_h,
            stride_w: self.stride_w,
            dilation_h: self.dilation_h,
            dilation_w: self.dilation_w,
            pad_top,
            pad_left,
        })
    }
}

impl Window {
    /// Input coordinate of kernel tap `k` for output coordinate `o`, or `None`
    /// when it falls in the padding.
    #[inline(always)]
    pub fn tap(
        o: usize,
        stride: usize,
        pad: usize,
        k: usize,
        dilation: usize,
        in_size: usize,
    ) -> Option<usize> {
        let p = (o * stride + k * dilation) as isize - pad as isize;
        if p >= 0 && (p as usize) < in_size {
            Some(p as usize)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_sizes_match_tflite() {
        assert_eq!(WindowSpec::out_size(Padding::Same, 49, 10, 2, 1), 25);
        assert_eq!(WindowSpec::out_size(Padding::Valid, 49, 10, 2, 1), 20);
        assert_eq!(WindowSpec::out_size(Padding::Valid, 5, 3, 1, 2), 1);
        assert_eq!(WindowSpec::out_size(Padding::Valid, 2, 3, 1, 1), 0);
    }

    #[test]
    fn same_padding_centres_the_window() {
        let spec = WindowSpec {
            kernel_h: 10,
            kernel_w: 4,
            stride_h: 2,
            stride_w: 2,
            dilation_h: 1,
            dilation_w: 1,
            padding: Padding::Same,
        };
        // KWS first layer: 49x10 -> 25x5, pads (25-1)*2+10-49 = 9 -> 4 on top.
        let w = spec.resolve("conv2d", 49, 10, 25, 5).unwrap();
        assert_eq!((w.pad_top, w.pad_left), (4, 1));
        assert!(spec.resolve("conv2d", 49, 10, 24, 5).is_err());
    }
}
