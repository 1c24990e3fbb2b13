//! RIFF/WAVE reading: 16-bit PCM, mono or multi-channel (channel 0 is kept).

use std::fmt;

/// A decoded WAV file, channel 0 only.
#[derive(Clone, Debug, PartialEq)]
pub struct Wav {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

/// Why bytes are not a WAV file this SDK reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavError(pub String);

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, WavError> {
    Err(WavError(msg.into()))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// The `fmt ` fields that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub sample_rate: u32,
    pub channels: u16,
}

/// Parse a header up to the start of the `data` chunk: the format, the byte
/// offset where samples start, and the data length the header declares.
pub fn parse_header(bytes: &[u8]) -> Result<(Format, usize, usize), WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return err("not a RIFF/WAVE file");
    }
    let mut at = 12;
    let mut format = None;
    loop {
        let (Some(id), Some(size)) = (bytes.get(at..at + 4), u32_at(bytes, at + 4)) else {
            return err("no data chunk");
        };
        let body = at + 8;
        let size = size as usize;
        match id {
            b"fmt " => {
                let f = bytes
                    .get(body..body + size.min(40))
                    .ok_or_else(|| WavError("truncated fmt chunk".into()))?;
                let tag = u16_at(f, 0).unwrap_or(0);
                let channels = u16_at(f, 2).unwrap_or(0);
                let sample_rate = u32_at(f, 4).unwrap_or(0);
                let bits = u16_at(f, 14).unwrap_or(0);
                // 0xFFFE (extensible) carries its real format tag in the sub-format GUID.
                let real_tag = if tag == 0xFFFE {
                    u16_at(f, 24).unwrap_or(0)
                } else {
                    tag
                };
                if real_tag != 1 || bits != 16 {
                    return err(format!(
                        "only 16-bit PCM is supported (format {real_tag}, {bits} bits)"
                    ));
                }
                if channels == 0 || sample_rate == 0 {
                    return err("fmt chunk declares no channels or no sample rate");
                }
                format = Some(Format {
                    sample_rate,
                    channels,
                });
            }
            b"data" => {
                let format =
                    format.ok_or_else(|| WavError("data chunk before fmt chunk".into()))?;
                return Ok((format, body, size));
            }
            _ => {}
        }
        // Chunks are padded to even sizes.
        at = body
            .checked_add(size + (size & 1))
            .ok_or_else(|| WavError("chunk size overflows".into()))?;
    }
}

/// Decode a whole file. A data chunk that claims more than the file holds is
/// read as far as it goes (streams are often written with a guessed size).
pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    let (format, start, len) = parse_header(bytes)?;
    let end = start.saturating_add(len).min(bytes.len());
    let data = &bytes[start.min(end)..end];
    let frame = 2 * format.channels as usize;
    let samples = data
        .chunks_exact(frame)
        .map(|f| i16::from_le_bytes([f[0], f[1]]))
        .collect();
    Ok(Wav {
        sample_rate: format.sample_rate,
        channels: format.channels,
        samples,
    })
}

/// A WAV file arriving in pieces of any size: the header first, then
/// samples. Keeps partial frames between pieces.
#[derive(Debug, Default)]
pub struct WavStream {
    header: Vec<u8>,
    format: Option<Format>,
    /// Data bytes the header declared and how many have arrived.
    declared: u64,
    seen: u64,
    partial: Vec<u8>,
}

/// Headers longer than this are refused (a WAV header is tens of bytes).
const MAX_HEADER: usize = 1 << 16;

impl WavStream {
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Whether the data chunk is complete, so the next piece starts a new file.
    pub fn finished(&self) -> bool {
        self.format.is_some() && self.seen >= self.declared
    }

    /// Take the next piece; returns the channel-0 samples it completes.
    pub fn push(&mut self, piece: &[u8]) -> Result<Vec<i16>, WavError> {
        let mut data = piece;
        if self.format.is_none() {
            self.header.extend_from_slice(piece);
            match parse_header(&self.header) {
                Ok((format, start, declared)) => {
                    self.format = Some(format);
                    self.declared = declared as u64;
                    let rest = std::mem::take(&mut self.header);
                    self.partial.clear();
                    return self.samples(&rest[start.min(rest.len())..]);
                }
                Err(e) if self.header.len() < MAX_HEADER && Self::incomplete(&self.header, &e) => {
                    return Ok(Vec::new());
                }
                Err(e) => {
                    self.header.clear();
                    return Err(e);
                }
            }
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.samples(data);
        data = &[];
        let _ = data;
        out
    }

    /// Whether `e` only says the header has not all arrived yet.
    fn incomplete(header: &[u8], e: &WavError) -> bool {
        if header.len() < 12 {
            let n = header.len();
            return header[..n.min(4)] == b"RIFF"[..n.min(4)]
                && (n <= 8 || header[8..n] == b"WAVE"[..n - 8]);
        }
        matches!(e.0.as_str(), "no data chunk" | "truncated fmt chunk")
    }

    fn samples(&mut self, bytes: &[u8]) -> Result<Vec<i16>, WavError> {
        let Some(f) = self.format else {
            return Ok(Vec::new());
        };
        self.seen += bytes.len() as u64;
        let frame = 2 * f.channels as usize;
        self.partial.extend_from_slice(bytes);
        let whole = self.partial.len() / frame * frame;
        let out = self.partial[..whole]
            .chunks_exact(frame)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        self.partial.drain(..whole);
        Ok(out)
    }
}

/// Build a WAV file in memory (tests and tools).
pub fn encode(sample_rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&sample_rate.to_le_bytes());
    b.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers that claim about 4 GiB (`fuzz/seeds/wav/`, made as its
    /// README says) over 32 bytes of samples: what is there is read, whole
    /// or streamed in pieces, and nothing is sized by the claim.
    #[test]
    fn headers_that_lie_about_their_sizes_give_what_is_there() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/wav");
        for name in ["data-claims-4gib.wav", "riff-claims-4gib.wav"] {
            let bytes = std::fs::read(seeds.join(name)).expect("seed");
            let w = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(w.samples, [1, -1].repeat(8), "{name}");
            let mut stream = WavStream::default();
            let streamed: Vec<i16> = bytes
                .chunks(5)
                .flat_map(|piece| stream.push(piece).expect("a piece"))
                .collect();
            assert_eq!(streamed, w.samples, "{name}");
        }
    }

    #[test]
    fn round_trips_and_rejects_junk() {
        let w = parse(&encode(16000, &[1, -2, 3])).unwrap();
        assert_eq!(
            w,
            Wav {
                sample_rate: 16000,
                channels: 1,
                samples: vec![1, -2, 3]
            }
        );
        assert!(parse(b"RIFF").is_err());
        assert!(parse(b"not a wav file at all").is_err());
        let mut truncated = encode(16000, &[5; 100]);
        truncated.truncate(60);
        assert_eq!(parse(&truncated).unwrap().samples.len(), 8);
        let mut float = encode(16000, &[0; 4]);
        float[20] = 3; // IEEE float
        assert!(parse(&float).unwrap_err().0.contains("16-bit PCM"));
        // A chunk size near u32::MAX must not overflow or loop.
        let mut bad = encode(16000, &[0; 4]);
        bad[12..16].copy_from_slice(b"junk");
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn a_stream_in_odd_pieces_gives_the_same_samples() {
        let samples: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let file = encode(16000, &samples);
        for piece in [1, 3, 7, 44, 45, 500] {
            let mut s = WavStream::default();
            let mut got = Vec::new();
            for p in file.chunks(piece) {
                got.extend(s.push(p).unwrap());
            }
            assert_eq!(got, samples, "pieces of {piece}");
            assert!(s.finished());
        }
        assert!(WavStream::default().push(b"RIFF\0\0\0\0JUNKjunk").is_err());
    }

    #[test]
    fn stereo_keeps_channel_zero() {
        let mut b = encode(16000, &[10, 20, 30, 40]);
        b[22] = 2; // channels
        let w = parse(&b).unwrap();
        assert_eq!((w.channels, w.samples), (2, vec![10, 30]));
    }
}
