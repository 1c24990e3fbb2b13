//! Images for vision models: decode PNG or JPEG, crop the centre square,
//! resize to the model's input (all with the `image` crate).

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

    /// Bilinear resize that widens its filter when shrinking (the `image`
    /// crate's triangle filter, as PIL's `BILINEAR`): the reference pipeline's
    /// resize. Plain two-tap bilinear would alias badly at 512 → 32.
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Rgb {
        let img =
            image::RgbImage::from_raw(self.width as u32, self.height as u32, self.pixels.clone());
        match img {
            Some(img) => {
                let out = image::imageops::resize(
                    &img,
                    width as u32,
                    height as u32,
                    image::imageops::FilterType::Triangle,
                );
                Rgb {
                    width,
                    height,
                    pixels: out.into_raw(),
                }
            }
            // Our own constructors keep pixels at width × height × 3.
            None => Rgb {
                width,
                height,
                pixels: vec![0; width * height * 3],
            },
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
