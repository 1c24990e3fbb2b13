//! A plugin's stdout and stderr: lines into the operator's log, tagged with
//! the plugin, truncated and rate-limited, so that a flood costs the host a
//! scan of the bytes and nothing more.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept; the rest of a longer line is dropped.
pub(crate) const LINE_BYTES: usize = 2048;
/// Lines a plugin may log at once, then [`LINES_PER_SECOND`].
const BURST_LINES: f64 = 200.0;
const LINES_PER_SECOND: f64 = 50.0;
/// How much of a stream's write the guest may hand over at once.
const PERMIT: usize = 64 << 10;
/// stderr lines kept per instance to explain a trap.
const TAIL_LINES: usize = 8;

/// Which of the two streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    Stdout,
    Stderr,
}

/// One plugin's share of the log: shared by all its instances, so more
/// instances do not buy a bigger flood.
pub(crate) struct LogSink {
    label: String,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

impl LogSink {
    pub(crate) fn new(label: String) -> Arc<Self> {
        Arc::new(LogSink {
            label,
            bucket: Mutex::new(Bucket {
                tokens: BURST_LINES,
                at: Instant::now(),
                dropped: 0,
            }),
        })
    }

    /// Log `line` if the plugin's share allows; whether it was.
    fn emit(&self, channel: Channel, line: &str) -> bool {
        let dropped = {
            let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(b.at).as_secs_f64() * LINES_PER_SECOND;
            b.tokens = (b.tokens + refill).min(BURST_LINES);
            b.at = now;
            if b.tokens < 1.0 {
                b.dropped += 1;
                return false;
            }
            b.tokens -= 1.0;
            std::mem::take(&mut b.dropped)
        };
        let plugin = self.label.as_str();
        if dropped > 0 {
            tracing::warn!(plugin, "{dropped} lines of output dropped (rate limit)");
        }
        match channel {
            Channel::Stdout => tracing::info!(plugin, stream = "stdout", "{line}"),
            Channel::Stderr => tracing::warn!(plugin, stream = "stderr", "{line}"),
        }
        true
    }
}

/// The last lines an instance wrote to stderr, whatever the rate limit let
/// through: a Python traceback, a Rust panic message.
#[derive(Clone, Default)]
pub(crate) struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }

    /// The kept lines, oldest first, and forget them.
    pub(crate) fn take(&self) -> Vec<String> {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.drain(..).collect()
    }
}

/// What `get-stdout`/`get-stderr` hand the guest.
#[derive(Clone)]
pub(crate) struct LogStdio {
    pub(crate) sink: Arc<LogSink>,
    pub(crate) channel: Channel,
    pub(crate) tail: Option<Tail>,
}

impl IsTerminal for LogStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStdio {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineStream {
            out: self.clone(),
            line: Vec::new(),
            cut: false,
        })
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        // Only WASIp3 guests take this path, and the runtime links p2 only.
        Box::new(tokio::io::sink())
    }
}

/// Splits what the guest writes into lines.
struct LineStream {
    out: LogStdio,
    line: Vec<u8>,
    /// The current line passed `LINE_BYTES`: drop the rest of it.
    cut: bool,
}

impl LineStream {
    fn end_line(&mut self) {
        let mut text = String::from_utf8_lossy(&self.line).into_owned();
        if self.cut {
            text.push('…');
        }
        self.line.clear();
        self.cut = false;
        if let Some(tail) = &self.out.tail {
            tail.push(text.clone());
        }
        let _logged = self.out.sink.emit(self.out.channel, &text);
    }
}

#[async_trait]
impl Pollable for LineStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            let (piece, newline) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            let room = LINE_BYTES.saturating_sub(self.line.len());
            if piece.len() > room {
                self.cut = true;
            }
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
            rest = &rest[piece.len()..];
            if newline {
                rest = &rest[1..];
                self.end_line();
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(PERMIT)
    }
}

impl Drop for LineStream {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.end_line();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(sink: &Arc<LogSink>, tail: &Tail) -> Box<dyn OutputStream> {
        LogStdio {
            sink: sink.clone(),
            channel: Channel::Stderr,
            tail: Some(tail.clone()),
        }
        .p2_stream()
    }

    #[test]
    fn a_flood_is_cut_to_the_burst() {
        let sink = LogSink::new("flood@1".into());
        let logged = (0..100_000)
            .filter(|i| sink.emit(Channel::Stdout, &format!("line {i}")))
            .count();
        // The burst, plus what refilled while the loop ran.
        assert!(
            (BURST_LINES as usize..BURST_LINES as usize + 100).contains(&logged),
            "{logged} lines logged"
        );
    }

    #[test]
    fn lines_are_split_truncated_and_kept_for_traps() {
        let sink = LogSink::new("p@1".into());
        let tail = Tail::default();
        let mut s = stream(&sink, &tail);
        s.write(Bytes::from_static(b"first\nsec")).unwrap();
        s.write(Bytes::from_static(b"ond\n")).unwrap();
        s.write(Bytes::from(vec![b'x'; LINE_BYTES * 3])).unwrap();
        s.write(Bytes::from_static(b"\nunfinished")).unwrap();
        drop(s);
        let lines = tail.take();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0], "first");
        assert_eq!(lines[1], "second");
        assert_eq!(lines[2].len(), LINE_BYTES + '…'.len_utf8());
        assert_eq!(lines[3], "unfinished", "a dropped stream ends its line");
        assert!(tail.take().is_empty(), "taken");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let sink = LogSink::new("p@1".into());
        let tail = Tail::default();
        let mut s = stream(&sink, &tail);
        for i in 0..100 {
            s.write(Bytes::from(format!("l{i}\n"))).unwrap();
        }
        let lines = tail.take();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("l99"));
    }
}
