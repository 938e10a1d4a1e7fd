//! Frames whose cold decode was cut short by SPEC §4's byte bound — the decoder still held the
//! target back when the lookahead a cold frame may read ran out (1080p pictures), so it was
//! flushed and not kept — remembered briefly: a cold decode of a frame just after one of them is
//! the next step of a walk, and may read as far past its target as keeping its decoder needs.
//! Its GOP span was just read, so the origin's range cache holds it and the origin sends little
//! more than that lookahead; a frame elsewhere in the movie stays bounded as a cold frame.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a cut-short frame counts as the step before the next request's.
const REMEMBERED_FOR: Duration = Duration::from_secs(60);
/// Cut-short frames remembered at most, across movies (the oldest are forgotten).
const REMEMBERED: usize = 64;

#[derive(Debug, Clone, Copy)]
struct CutShort {
    movie: u64,
    pts: i64,
    at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Walks {
    cut_short: Mutex<VecDeque<CutShort>>,
}

impl Walks {
    /// The cold decode of `movie`'s frame shown at `pts` was cut short.
    pub fn cut_short(&self, movie: u64, pts: i64) {
        let mut list = self
            .cut_short
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        list.retain(|c| c.movie != movie || c.pts != pts);
        list.push_front(CutShort {
            movie,
            pts,
            at: Instant::now(),
        });
        list.truncate(REMEMBERED);
    }

    /// Whether a frame of `movie` shown at `pts` follows a cut-short frame of it by at most
    /// `within` (in the stream's time base), remembered less than a minute.
    pub fn follows(&self, movie: u64, pts: i64, within: i64) -> bool {
        let mut list = self
            .cut_short
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        list.retain(|c| c.at.elapsed() < REMEMBERED_FOR);
        list.iter().any(|c| {
            c.movie == movie && pts > c.pts && i128::from(pts) - i128::from(c.pts) <= within.into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_frame_just_after_a_cut_short_one_of_the_same_movie_follows_it() {
        let walks = Walks::default();
        assert!(!walks.follows(1, 100, 16));
        walks.cut_short(1, 100);
        assert!(walks.follows(1, 101, 16));
        assert!(walks.follows(1, 116, 16));
        assert!(!walks.follows(1, 117, 16), "too far ahead");
        assert!(!walks.follows(1, 100, 16), "the same frame");
        assert!(!walks.follows(1, 99, 16), "behind it");
        assert!(!walks.follows(2, 101, 16), "another movie");
        for movie in 10..10 + REMEMBERED as u64 {
            walks.cut_short(movie, 0);
        }
        assert!(!walks.follows(1, 101, 16), "forgotten");
    }
}
