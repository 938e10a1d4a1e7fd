//! cargo-fuzz target: a movie from arbitrary bytes is opened, three frames are decoded and one
//! is encoded as PNG; libFuzzer reports panics, leaks, timeouts and memory blow-ups.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lazycache_decode::{ByteSource, Format, Limits, Movie, RenderOptions, SourceError};
use libfuzzer_sys::fuzz_target;

/// The whole input in memory, named with the extension its first bytes suggest.
struct MemSource {
    bytes: Bytes,
    extension: &'static str,
}

impl ByteSource for MemSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn validator(&self) -> &str {
        "fuzz"
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, SourceError> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let end = start.saturating_add(len).min(self.bytes.len());
        Ok(self.bytes.slice(start..end))
    }
    fn describe(&self) -> String {
        format!("fuzz input.{}", self.extension)
    }
    fn extension(&self) -> Option<String> {
        Some(self.extension.to_owned())
    }
}

/// The extension of the container these bytes look like (MOV when nothing matches).
fn guess_extension(data: &[u8]) -> &'static str {
    match data {
        [0x1A, 0x45, 0xDF, 0xA3, ..] => "mkv",
        [b'R', b'I', b'F', b'F', ..] => "avi",
        [0x06, 0x0E, 0x2B, 0x34, ..] => "mxf",
        [0x47, ..] => "ts",
        _ => "mov",
    }
}

fuzz_target!(|data: &[u8]| {
    let source = Arc::new(MemSource {
        extension: guess_extension(data),
        bytes: Bytes::copy_from_slice(data),
    });
    let limits = Limits {
        decode_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let Ok(movie) = Movie::open(source, limits) else {
        return;
    };
    let count = movie.frame_count();
    let _ = movie.frame_at_time(movie.metadata().duration / 2.0);
    for n in [1, count.div_ceil(2), count, count + 1] {
        let _ = movie.decode(n);
    }
    let _ = movie.frame(
        count.div_ceil(2),
        &RenderOptions::default(),
        Format::Png,
        None,
    );
});
