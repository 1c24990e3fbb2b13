//! Images for vision models: decode PNG or JPEG, crop the centre square,
//! resize to the model's input (decoding with the `image` crate, resizing
//! as Pillow does).

/// An RGB image, rows then columns then channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Largest image accepted, in pixels: a decoded 8k×8k RGB image is 192 MB,
/// more than a plugin's memory.
pub const MAX_PIXELS: u64 = 16 << 20;

/// Decode PNG or JPEG bytes to RGB.
pub fn decode(bytes: &[u8]) -> Result<Rgb, String> {
    let format = image::guess_format(bytes).map_err(|_| "not a PNG or JPEG image".to_string())?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(format!(
            "{format:?} images are not supported; send PNG or JPEG"
        ));
    }
    // The header's claim first: an image that says it is 100,000 pixels
    // square is refused for what it claims, before anything is decoded.
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("cannot read the image's header: {e}"))?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "the image claims {w} x {h} pixels; at most {MAX_PIXELS} are accepted"
        ));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode the image: {e}"))?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err("the image is empty".into());
    }
    Ok(Rgb {
        width: w as usize,
        height: h as usize,
        pixels: rgb.into_raw(),
    })
}

impl Rgb {
    /// The largest centred square.
    pub fn centre_square(&self) -> Rgb {
        let side = self.width.min(self.height);
        let (x0, y0) = ((self.width - side) / 2, (self.height - side) / 2);
        let mut pixels = Vec::with_capacity(side * side * 3);
        for y in y0..y0 + side {
            let row = (y * self.width + x0) * 3;
            pixels.extend_from_slice(&self.pixels[row..row + side * 3]);
        }
        Rgb {
            width: side,
            height: side,
            pixels,
        }
    }

    /// Bilinear resize as Pillow's `Image.resize(size, BILINEAR)` does it,
    /// byte for byte: the reference pipeline's resize (the expected results
    /// of `examples/data/images` come out exactly with it). The triangle
    /// filter widens with the shrink factor, so 512 → 32 averages rather
    /// than aliases; weights are fixed point with 22 fraction bits, and the
    /// horizontal pass is rounded to bytes before the vertical one
    /// (Pillow's `Resample.c`).
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Rgb {
        if width == 0 || height == 0 || self.pixels.len() != self.width * self.height * 3 {
            return Rgb {
                width,
                height,
                pixels: vec![0; width * height * 3],
            };
        }
        let across = Taps::new(self.width, width);
        let mut wide = vec![0u8; self.height * width * 3];
        for y in 0..self.height {
            let row = &self.pixels[y * self.width * 3..(y + 1) * self.width * 3];
            for x in 0..width {
                let (first, k) = across.of(x);
                for c in 0..3 {
                    let sum = k.iter().enumerate().fold(HALF, |s, (i, &w)| {
                        s + row[(first + i) * 3 + c] as i64 * w as i64
                    });
                    wide[(y * width + x) * 3 + c] = clip8(sum);
                }
            }
        }
        let down = Taps::new(self.height, height);
        let mut pixels = vec![0u8; width * height * 3];
        for y in 0..height {
            let (first, k) = down.of(y);
            for x in 0..width * 3 {
                let sum = k.iter().enumerate().fold(HALF, |s, (i, &w)| {
                    s + wide[(first + i) * width * 3 + x] as i64 * w as i64
                });
                pixels[y * width * 3 + x] = clip8(sum);
            }
        }
        Rgb {
            width,
            height,
            pixels,
        }
    }

    /// The int8 input MLPerf Tiny's vision models take: pixel − 128.
    pub fn to_int8_offset(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .map(|&p| (p as i16 - 128) as i8 as u8)
            .collect()
    }
}

/// Fraction bits of Pillow's 8-bit resampling weights.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Half of one, to round the fixed-point sums.
const HALF: i64 = 1 << (PRECISION_BITS - 1);

fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The inputs and fixed-point weights of each output position along one
/// dimension, as Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc`
/// make them for the bilinear (triangle) filter.
struct Taps {
    /// First input of each output.
    first: Vec<usize>,
    /// `size` weights per output, zero past its inputs.
    weights: Vec<i32>,
    size: usize,
}

impl Taps {
    fn new(in_size: usize, out_size: usize) -> Taps {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        // The triangle's support, 1, widened when shrinking.
        let support = filterscale;
        let size = support.ceil() as usize * 2 + 1;
        let (mut first, mut weights) = (Vec::with_capacity(out_size), vec![0i32; out_size * size]);
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin).min(size);
            let mut k = vec![0f64; n];
            let mut total = 0.0;
            for (x, w) in k.iter_mut().enumerate() {
                let t = ((x + xmin) as f64 - center + 0.5) * ss;
                *w = if t.abs() < 1.0 { 1.0 - t.abs() } else { 0.0 };
                total += *w;
            }
            for (x, w) in k.iter().enumerate() {
                let w = if total != 0.0 { w / total } else { *w };
                let fixed = w * (1u64 << PRECISION_BITS) as f64;
                weights[xx * size + x] = if w < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            first.push(xmin);
        }
        Taps {
            first,
            weights,
            size,
        }
    }

    /// The first input and the weights of output `x`.
    fn of(&self, x: usize) -> (usize, &[i32]) {
        let k = &self.weights[x * self.size..(x + 1) * self.size];
        // Weights past the last input are zero; cut them so no input past
        // the end is read.
        let last = k.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        (self.first[x], &k[..last])
    }
}

/// An image classifier's whole `process`: decode, crop, resize to the
/// model's square input, run, and label.
pub fn classify(
    model: &crate::tflite::Model,
    labels: &[&str],
    image: &[u8],
) -> Result<crate::Inference, crate::PluginError> {
    let shape = &model.input().shape;
    let side = match shape.as_slice() {
        &[1, h, w, 3] if h == w => h as usize,
        _ => {
            return Err(crate::PluginError::InvalidConfig(format!(
                "model input {shape:?} is not a square RGB image"
            )));
        }
    };
    let img = decode(image).map_err(crate::PluginError::InvalidInput)?;
    let tensor = img
        .centre_square()
        .resize_bilinear(side, side)
        .to_int8_offset();
    let out = crate::run_model(model, &tensor)?;
    let probs: Vec<i8> = out.iter().map(|&b| b as i8).collect();
    Ok(crate::Inference::classification(labels, &probs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Rgb {
        let pixels = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 10) as u8, (y * 10) as u8, 7]))
            .collect();
        Rgb {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn crop_takes_the_middle() {
        let c = gradient(6, 4).centre_square();
        assert_eq!((c.width, c.height), (4, 4));
        assert_eq!(&c.pixels[..3], &[10, 0, 7]);
    }

    #[test]
    fn resize_keeps_constant_images_and_averages_neighbours() {
        let flat = Rgb {
            width: 5,
            height: 5,
            pixels: vec![200; 75],
        };
        assert!(flat.resize_bilinear(3, 3).pixels.iter().all(|&p| p == 200));
        // 2x1 -> 1x1 averages both pixels.
        let two = Rgb {
            width: 2,
            height: 1,
            pixels: vec![0, 0, 0, 100, 50, 10],
        };
        assert_eq!(two.resize_bilinear(1, 1).pixels, vec![50, 25, 5]);
        // Shrinking 4 -> 1 weighs all four columns, not just the middle two.
        let four = Rgb {
            width: 4,
            height: 1,
            pixels: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 240, 240],
        };
        assert!(four.resize_bilinear(1, 1).pixels[0] > 0);
    }

    /// `fuzz/seeds/image/claims-100000x100000.png` (how it was made: the
    /// seeds' README): a 1×1 PNG whose header claims 100,000 × 100,000.
    #[test]
    fn a_header_claiming_a_huge_image_is_refused_for_its_claim() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/image/claims-100000x100000.png");
        let e = decode(&std::fs::read(path).expect("seed")).unwrap_err();
        assert!(e.contains("claims 100000 x 100000 pixels"), "{e}");
    }

    #[test]
    fn junk_is_refused() {
        assert!(decode(b"definitely not an image").is_err());
        assert!(decode(b"\x89PNG\r\n\x1a\n truncated").is_err());
    }

    #[test]
    fn int8_offset() {
        let img = Rgb {
            width: 1,
            height: 1,
            pixels: vec![0, 128, 255],
        };
        assert_eq!(img.to_int8_offset(), vec![128u8, 0, 127]);
    }
}
