//! When a movie started, and so when each of its frames was shot: the container's creation time,
//! else a `YYYYMMDDTHHMMSSZ` stamp in the file's name (CamHD's `CAMHDA301-20160724T030000Z.mov`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lazycache_decode::Movie;

use crate::error::ServiceResult;

/// Where a frame sits in time.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTime {
    /// Seconds from the movie's first frame.
    pub seconds: f64,
    /// The wall-clock time it shows (RFC 3339, microseconds), when the movie's start is known.
    pub timestamp: Option<String>,
}

impl FrameTime {
    /// Frame `frame` (1-based) of `movie`, whose file is named `file_name`.
    pub fn of(movie: &Movie, frame: u64, file_name: &str) -> ServiceResult<Self> {
        let seconds = movie.frame_time(frame)?;
        let timestamp = start_time(movie.creation_time(), file_name)
            .and_then(|start| start.checked_add(Duration::try_from_secs_f64(seconds).ok()?))
            .map(|at| humantime::format_rfc3339_micros(at).to_string());
        Ok(Self { seconds, timestamp })
    }
}

/// `StartTime` in RFC 3339 (seconds, or finer when the creation time is finer).
pub fn start_time_text(movie: &Movie, file_name: &str) -> Option<String> {
    start_time(movie.creation_time(), file_name)
        .map(|start| humantime::format_rfc3339(start).to_string())
}

/// The container's creation time when it is a real date (not the zero some muxers write),
/// else the file name's stamp.
pub fn start_time(creation_time: Option<&str>, file_name: &str) -> Option<SystemTime> {
    creation_time
        .and_then(|text| humantime::parse_rfc3339_weak(text).ok())
        .filter(|time| *time > UNIX_EPOCH)
        .or_else(|| stamp_in_name(file_name))
}

/// The last `YYYYMMDDTHHMMSSZ` in `file_name` that is a valid time.
fn stamp_in_name(file_name: &str) -> Option<SystemTime> {
    const LEN: usize = "20160724T030000Z".len();
    let bytes = file_name.as_bytes();
    (0..bytes.len().saturating_sub(LEN - 1))
        .rev()
        .filter_map(|start| {
            let stamp = bytes.get(start..start + LEN)?;
            let shaped = stamp.iter().enumerate().all(|(i, b)| match i {
                8 => *b == b'T',
                15 => *b == b'Z',
                _ => b.is_ascii_digit(),
            });
            if !shaped {
                return None;
            }
            let digits = std::str::from_utf8(stamp).ok()?;
            let text = format!(
                "{}-{}-{}T{}:{}:{}Z",
                &digits[0..4],
                &digits[4..6],
                &digits[6..8],
                &digits[9..11],
                &digits[11..13],
                &digits[13..15]
            );
            humantime::parse_rfc3339(&text).ok()
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(time: Option<SystemTime>) -> Option<String> {
        time.map(|t| humantime::format_rfc3339(t).to_string())
    }

    #[test]
    fn camhd_names_give_the_start() {
        assert_eq!(
            text(start_time(None, "CAMHDA301-20160724T030000Z.mov")).as_deref(),
            Some("2016-07-24T03:00:00Z")
        );
        assert_eq!(text(start_time(None, "clip.mov")), None);
        // Not a date: month 13.
        assert_eq!(text(start_time(None, "X-20161324T030000Z.mov")), None);
        assert_eq!(text(start_time(None, "20160724T030000")), None);
    }

    #[test]
    fn a_creation_time_wins_unless_it_is_zero() {
        assert_eq!(
            text(start_time(
                Some("2020-01-02T03:04:05.500000Z"),
                "CAMHDA301-20160724T030000Z.mov"
            ))
            .as_deref(),
            Some("2020-01-02T03:04:05.500000000Z")
        );
        assert_eq!(
            text(start_time(
                Some("1970-01-01T00:00:00.000000Z"),
                "CAMHDA301-20160724T030000Z.mov"
            ))
            .as_deref(),
            Some("2016-07-24T03:00:00Z")
        );
        assert_eq!(
            text(start_time(Some("garbage"), "a-20160724T030000Z.mov")).as_deref(),
            Some("2016-07-24T03:00:00Z")
        );
    }
}
