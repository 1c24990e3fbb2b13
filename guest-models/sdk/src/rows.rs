//! Streams of sensor rows: messages of float32 values, a fixed number of
//! channels a row, read as raw little-endian float32 or as a JSON array of
//! numbers, and the newest rows of a stream kept, normalized, as a model's
//! float32 input window. What plugins for time-series sensors share
//! (`maintenance`, `smart-home`).

use std::collections::VecDeque;

use crate::PluginError;

/// Little-endian float32 values of `bytes` (a whole number of them).
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The rows of one message: whole rows of `channels` finite values. A
/// message that is printable ASCII starting with `[` is a JSON array of
/// numbers (`[1.5, 2, ...]` or `[[...], [...]]`, flattened); anything else is
/// raw little-endian float32. Raw rows are never mistaken for JSON when a
/// channel can be negative: every byte of the value would have to be
/// printable, which needs it positive and between about 1e-19 and 3e38.
pub fn parse(input: &[u8], channels: usize) -> Result<Vec<f32>, PluginError> {
    let text = input.trim_ascii();
    let json = text.first() == Some(&b'[')
        && text
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let values = if json {
        let s = std::str::from_utf8(text)
            .map_err(|_| PluginError::InvalidInput("JSON input is not UTF-8".into()))?;
        let flat: String = s.chars().filter(|c| !matches!(c, '[' | ']')).collect();
        flat.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<f32>()
                    .map_err(|_| PluginError::InvalidInput(format!("{t:?} is not a number")))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        if !input.len().is_multiple_of(4) {
            return Err(PluginError::InvalidInput(format!(
                "{} bytes are not whole float32 values (rows of {channels} little-endian f32)",
                input.len()
            )));
        }
        f32s(input)
    };
    if values.is_empty() || !values.len().is_multiple_of(channels) {
        return Err(PluginError::InvalidInput(format!(
            "{} values are not whole rows of {channels} channels",
            values.len()
        )));
    }
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(PluginError::InvalidInput(format!(
            "row {}: channel {} is not a finite number",
            bad / channels,
            bad % channels
        )));
    }
    Ok(values)
}

/// A stream's newest rows, normalized per channel, as float32 input bytes.
pub struct Window {
    channels: usize,
    len: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
    rows: VecDeque<Vec<u8>>,
    seen: u64,
}

impl Window {
    /// A window of `len` rows of `channels` channels, normalized with
    /// `norm`: `channels` means then `channels` positive deviations, as
    /// little-endian float32 (a training script's output).
    pub fn new(channels: usize, len: usize, norm: &[u8]) -> Result<Self, PluginError> {
        let n = f32s(norm);
        // NaN is not positive either.
        if n.len() != 2 * channels || !n[channels..].iter().all(|&s| s > 0.0) {
            return Err(PluginError::InvalidConfig(format!(
                "the normalization is not {channels} means and {channels} positive deviations"
            )));
        }
        Ok(Window {
            channels,
            len,
            mean: n[..channels].to_vec(),
            std: n[channels..].to_vec(),
            rows: VecDeque::with_capacity(len),
            seen: 0,
        })
    }

    /// Add one row (`channels` values, as [`parse`] checked them); true
    /// once the window is full.
    pub fn push(&mut self, row: &[f32]) -> bool {
        let bytes = row
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .flat_map(|(&v, (&m, &s))| ((v - m) / s).to_le_bytes())
            .collect();
        if self.rows.len() == self.len {
            self.rows.pop_front();
        }
        self.rows.push_back(bytes);
        self.seen += 1;
        self.rows.len() == self.len
    }

    /// The window as the model's input: rows oldest first.
    pub fn input(&self) -> Vec<u8> {
        self.rows.iter().flatten().copied().collect()
    }

    /// Rows seen in this stream.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn channels(&self) -> usize {
        self.channels
    }
}

/// Softmax of logits, in float32.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The index of the largest value (the first of equals).
pub fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_json_rows_read_the_same() {
        let raw: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(parse(&raw, 2).unwrap(), [1.5, -2.0, 3.25, 0.0]);
        assert_eq!(
            parse(b" [[1.5, -2], [3.25, 0]]\n", 2).unwrap(),
            [1.5, -2.0, 3.25, 0.0]
        );
    }

    #[test]
    fn bad_messages_say_why() {
        let why = |input: &[u8]| match parse(input, 3) {
            Err(PluginError::InvalidInput(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(why(&[0; 7]).contains("not whole float32"));
        assert!(why(&[0; 8]).contains("not whole rows"));
        assert!(why(b"[1, 2, x]").contains("is not a number"));
        assert!(why(b"[]").contains("not whole rows"));
        let nan: Vec<u8> = [1.0f32, f32::NAN, 2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(why(&nan).contains("row 0: channel 1"));
    }

    #[test]
    fn the_window_keeps_the_newest_rows_normalized() {
        let norm: Vec<u8> = [1.0f32, 0.0, 2.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut w = Window::new(2, 2, &norm).unwrap();
        assert!(!w.push(&[3.0, 4.0]));
        assert!(w.push(&[5.0, 8.0]));
        assert!(w.push(&[7.0, 12.0]));
        assert_eq!(f32s(&w.input()), [2.0, 2.0, 3.0, 3.0]);
        assert_eq!(w.seen(), 3);
        assert!(Window::new(2, 2, &norm[..8]).is_err());
    }
}
