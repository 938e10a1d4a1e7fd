//! The pool of warm decoder states: long-GOP decoders kept after a frame with their feed (range
//! read samples or a demuxer; per movie, LRU, idle timeout, bounded by bytes), so that a request for a frame a little ahead continues from one
//! instead of decoding again from the keyframe, and the last pictures each produced answer
//! requests for them without decoding. Requests that a running decode will serve wait for it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ffmpeg_next::{ffi, frame};

use super::FrameCatcher;
use super::walks::Walks;
use super::warm_demux::DemuxFeed;
use crate::error::{Error, Result};

/// Pictures a state keeps after producing them, so that requests arriving out of order (11
/// before 10) or waiting while another decodes past them are answered without decoding.
pub(crate) const RECENT_PICTURES: usize = 8;
/// States kept per movie: a few readers walking one movie at different places.
const STATES_PER_MOVIE: usize = 4;

/// How warm decoding is bounded. `max_bytes == 0` turns it off.
#[derive(Debug, Clone, Copy)]
pub struct WarmSettings {
    /// Estimated bytes of every kept state together (reference pictures, threads' pictures and
    /// the kept recent pictures; see [`state_bytes`]).
    pub max_bytes: u64,
    /// A state unused this long is dropped.
    pub idle: Duration,
}

impl Default for WarmSettings {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            idle: Duration::from_secs(60),
        }
    }
}

/// A decoder positioned inside a movie: its frame catcher (which remembers what it showed) and
/// what it is fed from next.
pub(crate) struct WarmState {
    pub(crate) catcher: FrameCatcher,
    pub(crate) feed: Feed,
    /// False once the decoder was flushed (end of the movie, of the bytes a decode may read
    /// past its target, or of the GOP): not kept.
    pub(crate) reusable: bool,
    /// Estimated bytes of the decoder itself (see [`state_bytes`]); the feed's are added.
    pub(crate) decoder_bytes: u64,
    /// Started by the request decoding with it (no kept state could continue): what it reads
    /// past its target is bounded as a cold frame's (see `warm_demux::advance`).
    pub(crate) cold: bool,
}

/// Where a kept decoder's next packets come from.
pub(crate) enum Feed {
    /// Range-read samples (MOV/MP4): the next sample to feed, in decode order, and the bytes
    /// of samples `next..` read ahead and not fed yet.
    Samples {
        next: usize,
        pending: VecDeque<Bytes>,
    },
    /// A kept demuxer (Matroska/WebM, MXF, MPEG-TS, and other containers read through FFmpeg's
    /// demuxer), positioned after the last packet fed.
    Demux(DemuxFeed),
}

impl Feed {
    /// Bytes the feed holds: samples read ahead, or the demuxer's buffers.
    fn bytes(&self) -> u64 {
        match self {
            Self::Samples { pending, .. } => pending.iter().map(|b| b.len() as u64).sum(),
            Self::Demux(demux) => demux.held_bytes(),
        }
    }
}

impl WarmState {
    fn shown(&self) -> Option<&Shown> {
        self.catcher.shown.as_ref()
    }
    fn last_shown_pts(&self) -> Option<i64> {
        self.shown().and_then(Shown::last_pts)
    }
    /// What the decoder state and its feed weigh in the pool's budget.
    pub(crate) fn bytes(&self) -> u64 {
        self.decoder_bytes.saturating_add(self.feed.bytes())
    }
    fn progress(&self) -> Progress {
        let (next_sample, key_pts) = match &self.feed {
            Feed::Samples { next, .. } => (Some(*next), None),
            Feed::Demux(demux) => (demux.next_sample, demux.key_pts),
        };
        Progress {
            next_sample,
            key_pts,
            last_shown: self.last_shown_pts(),
        }
    }
}

/// How far a decoder has come: the next sample it will be fed (movies whose samples are
/// listed), the last keyframe it was fed (by pts; demuxed movies), the last picture it showed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Progress {
    pub(crate) next_sample: Option<usize>,
    pub(crate) key_pts: Option<i64>,
    pub(crate) last_shown: Option<i64>,
}

/// What a kept decoder has shown: the latest pts, and the last few pictures themselves.
#[derive(Default)]
pub(crate) struct Shown {
    last_pts: Option<i64>,
    recent: VecDeque<(i64, frame::Video)>,
}

impl Shown {
    /// Remembers a picture the decoder produced (keeping the last [`RECENT_PICTURES`]).
    pub(crate) fn push(&mut self, pts: i64, picture: &frame::Video) -> Result<()> {
        self.last_pts = Some(self.last_pts.map_or(pts, |last| last.max(pts)));
        self.recent.push_back((pts, share(picture)?));
        while self.recent.len() > RECENT_PICTURES {
            self.recent.pop_front();
        }
        Ok(())
    }

    pub(crate) fn last_pts(&self) -> Option<i64> {
        self.last_pts
    }

    /// The kept picture shown at `pts`, within `tolerance`.
    fn picture(&self, pts: i64, tolerance: i64) -> Option<&frame::Video> {
        self.recent
            .iter()
            .find(|(shown, _)| shown.abs_diff(pts) <= tolerance.unsigned_abs())
            .map(|(_, picture)| picture)
    }
}

/// A new reference to the same picture buffers (no copy).
pub(crate) fn share(picture: &frame::Video) -> Result<frame::Video> {
    let mut shared = frame::Video::empty();
    // SAFETY: both frames are valid; av_frame_ref adds references to the source's buffers.
    let ret = unsafe { ffi::av_frame_ref(shared.as_mut_ptr(), picture.as_ptr()) };
    if ret < 0 {
        return Err(Error::Decode(
            "out of memory for a picture reference".into(),
        ));
    }
    Ok(shared)
}

/// Estimated bytes of a decoder state: the pictures the codec may keep as references, one per
/// frame thread, and the recent pictures, at the stream's size and pixel format.
pub(crate) fn state_bytes(codec: &str, picture_bytes: u64, threads: usize) -> u64 {
    let references: u64 = match codec {
        "h264" | "hevc" => 16,
        "vp9" | "av1" => 8,
        "vp8" => 3,
        _ => 2,
    };
    picture_bytes.saturating_mul(references + threads as u64 + RECENT_PICTURES as u64 + 1)
}

/// What a request wants, in the movie's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want {
    pub(crate) movie: u64,
    /// The frame's pts, and how far a picture's may be from it (0 where samples are listed;
    /// half a frame on a timeline).
    pub(crate) target_pts: i64,
    pub(crate) tolerance: i64,
    /// Its position in presentation order.
    pub(crate) order_pos: usize,
    pub(crate) reach: Reach,
}

/// Which kept decoders a request may continue: those that reach it no later than a cold decode
/// would (or, where keyframes are not known, within a bound).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach {
    /// Samples listed: the target sample (decode order) and the keyframe a cold decode would
    /// start from; a state already past that keyframe is in the target's GOP.
    Samples { target: usize, cold_start: usize },
    /// Keyframes listed (Matroska's Cues), not samples: the pts of the keyframe a cold decode
    /// would start from; a state that has fed it (or a later one) is in the target's GOP.
    Keyframes { key_pts: i64 },
    /// Keyframes found only by reading (MXF, MPEG-TS): at most `ahead` time-base units past the
    /// picture the state showed last (see `warm_demux::UNLISTED_AHEAD`).
    Unlisted { ahead: i64 },
}

impl Want {
    /// Whether continuing a decoder that has come this far costs no more than a cold decode
    /// (within its bound where keyframes are unknown). This is the bound on "a little ahead":
    /// within the GOP (the state is past the keyframe), or the next GOP's leading frames; never
    /// further than a cold decode would go.
    fn can_continue(&self, progress: Progress) -> bool {
        let not_shown_yet = progress
            .last_shown
            .is_none_or(|shown| shown < self.target_pts.saturating_sub(self.tolerance));
        not_shown_yet && self.reached_by(progress)
    }

    fn reached_by(&self, progress: Progress) -> bool {
        match self.reach {
            Reach::Samples { cold_start, .. } => {
                progress.next_sample.is_some_and(|next| next >= cold_start)
            }
            Reach::Keyframes { key_pts } => progress.key_pts.is_some_and(|key| key >= key_pts),
            Reach::Unlisted { ahead } => progress
                .last_shown
                .is_some_and(|shown| self.target_pts.saturating_sub(shown) <= ahead),
        }
    }

    /// How far a decode for this request will have come when it ends.
    fn progress_after(&self, state: Option<&WarmState>) -> Progress {
        let before = state.map(WarmState::progress).unwrap_or_default();
        let (next_sample, key_pts) = match self.reach {
            Reach::Samples { target, .. } => (Some(target), before.key_pts),
            Reach::Keyframes { key_pts } => (
                before.next_sample,
                Some(before.key_pts.map_or(key_pts, |k| k.max(key_pts))),
            ),
            Reach::Unlisted { .. } => (before.next_sample, before.key_pts),
        };
        Progress {
            next_sample,
            key_pts,
            last_shown: Some(self.target_pts),
        }
    }
}

/// Where a checked-out state is going, for requests deciding whether to wait for it.
#[derive(Debug, Clone, Copy)]
struct Errand {
    from_pts: Option<i64>,
    target_pts: i64,
    order_pos: usize,
    /// How far it will have come.
    after: Progress,
}

struct Entry {
    id: u64,
    movie: u64,
    /// `None` while a request decodes with it.
    state: Option<WarmState>,
    errand: Option<Errand>,
    last_used: Instant,
}

#[derive(Default)]
struct Entries {
    list: Vec<Entry>,
    next_id: u64,
}

/// Shared by every movie of a process; see the module comment.
pub struct WarmPool {
    entries: Mutex<Entries>,
    returned: Condvar,
    settings: WarmSettings,
    /// Cold decodes cut short by the byte bound, which a walk's next frame may read past.
    pub(crate) walks: Walks,
}

/// The outcome of asking the pool for a frame.
pub(crate) enum Lease<'a> {
    /// A kept state had already produced it.
    Picture(frame::Video),
    /// Decode with this lease: its state when one can continue, else start cold. The entry is
    /// returned with [`Checkout::give_back`] or removed when the checkout is dropped.
    /// (Boxed: a state is large, a picture reference small.)
    Decode(Box<Checkout<'a>>),
}

pub(crate) struct Checkout<'a> {
    pool: &'a WarmPool,
    id: u64,
    pub(crate) state: Option<WarmState>,
}

impl WarmPool {
    pub fn new(settings: WarmSettings) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            returned: Condvar::new(),
            settings,
            walks: Walks::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.max_bytes > 0
    }

    /// Estimated bytes of the states kept now (checked-out ones excluded).
    pub fn bytes(&self) -> u64 {
        self.lock()
            .list
            .iter()
            .filter_map(|e| e.state.as_ref())
            .map(WarmState::bytes)
            .sum()
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A picture, a state to continue, or a fresh checkout for `want`; waits (until `deadline`)
    /// while a decode running for this movie will produce the frame or end just before it.
    pub(crate) fn lease(&self, want: Want, deadline: Instant) -> Result<Lease<'_>> {
        let mut entries = self.lock();
        loop {
            let now = Instant::now();
            self.forget_idle(&mut entries, now);
            let mine = || entries.list.iter().filter(|e| e.movie == want.movie);
            if let Some(picture) = mine()
                .filter_map(|e| {
                    e.state
                        .as_ref()?
                        .shown()?
                        .picture(want.target_pts, want.tolerance)
                })
                .next()
            {
                return Ok(Lease::Picture(share(picture)?));
            }
            let best = mine()
                .filter_map(|e| Some((e.id, e.state.as_ref()?)))
                .filter(|(_, s)| want.can_continue(s.progress()))
                .max_by_key(|(_, s)| {
                    let progress = s.progress();
                    (progress.next_sample, progress.last_shown)
                })
                .map(|(id, _)| id);
            let worth_waiting = mine()
                .filter_map(|e| e.errand)
                .any(|errand| Self::worth_waiting(&want, &errand));
            if let Some(id) = best {
                let entry = entries.list.iter_mut().find(|e| e.id == id);
                if let Some(entry) = entry {
                    let state = entry.state.take();
                    entry.errand = Some(errand_for(&want, state.as_ref()));
                    return Ok(Lease::Decode(Box::new(Checkout {
                        pool: self,
                        id,
                        state,
                    })));
                }
            }
            if worth_waiting && now < deadline {
                let (guard, _) = self
                    .returned
                    .wait_timeout(entries, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner);
                entries = guard;
                continue;
            }
            entries.next_id += 1;
            let id = entries.next_id;
            entries.list.push(Entry {
                id,
                movie: want.movie,
                state: None,
                errand: Some(errand_for(&want, None)),
                last_used: now,
            });
            return Ok(Lease::Decode(Box::new(Checkout {
                pool: self,
                id,
                state: None,
            })));
        }
    }

    /// A running decode will produce the wanted picture and keep it (it lies between where the
    /// decode started and its target, among the pictures kept), or stop just before it, where
    /// continuing is cheaper than a cold decode.
    fn worth_waiting(want: &Want, errand: &Errand) -> bool {
        let passes = errand.from_pts.is_none_or(|from| from < want.target_pts)
            && want.target_pts <= errand.target_pts
            && errand.order_pos - want.order_pos.min(errand.order_pos) < RECENT_PICTURES;
        let continues = want.target_pts > errand.target_pts && want.reached_by(errand.after);
        passes || continues
    }

    fn give_back(&self, id: u64, state: WarmState) {
        let mut entries = self.lock();
        let now = Instant::now();
        let Some(entry) = entries.list.iter_mut().find(|e| e.id == id) else {
            return;
        };
        let movie = entry.movie;
        if state.reusable && self.enabled() {
            entry.state = Some(state);
            entry.errand = None;
            entry.last_used = now;
        } else {
            entries.list.retain(|e| e.id != id);
        }
        self.evict(&mut entries, movie);
        drop(entries);
        self.returned.notify_all();
    }

    fn remove(&self, id: u64) {
        self.lock().list.retain(|e| e.id != id);
        self.returned.notify_all();
    }

    fn forget_idle(&self, entries: &mut Entries, now: Instant) {
        let idle = self.settings.idle;
        entries
            .list
            .retain(|e| e.state.is_none() || now.duration_since(e.last_used) < idle);
    }

    /// Least recently used kept states go first: beyond [`STATES_PER_MOVIE`] for `movie`, then
    /// while all kept states together exceed the byte bound.
    fn evict(&self, entries: &mut Entries, movie: u64) {
        let kept_of = |entries: &Entries, movie: Option<u64>| {
            entries
                .list
                .iter()
                .filter(|e| e.state.is_some() && movie.is_none_or(|m| e.movie == m))
                .count()
        };
        let bytes = |entries: &Entries| -> u64 {
            entries
                .list
                .iter()
                .filter_map(|e| e.state.as_ref())
                .map(WarmState::bytes)
                .sum()
        };
        while kept_of(entries, Some(movie)) > STATES_PER_MOVIE
            || (kept_of(entries, None) > 0 && bytes(entries) > self.settings.max_bytes)
        {
            let over_movie = kept_of(entries, Some(movie)) > STATES_PER_MOVIE;
            let oldest = entries
                .list
                .iter()
                .filter(|e| e.state.is_some() && (!over_movie || e.movie == movie))
                .min_by_key(|e| e.last_used)
                .map(|e| e.id);
            match oldest {
                Some(id) => entries.list.retain(|e| e.id != id),
                None => break,
            }
        }
    }
}

fn errand_for(want: &Want, state: Option<&WarmState>) -> Errand {
    Errand {
        from_pts: state.and_then(WarmState::last_shown_pts),
        target_pts: want.target_pts,
        order_pos: want.order_pos,
        after: want.progress_after(state),
    }
}

impl Checkout<'_> {
    /// Keeps `state` for later requests (unless it cannot continue) and wakes waiting ones.
    pub(crate) fn give_back(mut self, state: WarmState) {
        let id = self.id;
        self.id = 0;
        self.pool.give_back(id, state);
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if self.id != 0 {
            self.pool.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(target: usize, order_pos: usize, cold_start: usize) -> Want {
        Want {
            movie: 1,
            target_pts: target as i64 * 10,
            tolerance: 0,
            order_pos,
            reach: Reach::Samples { target, cold_start },
        }
    }

    fn at(next_sample: usize, last_shown: i64) -> Progress {
        Progress {
            next_sample: Some(next_sample),
            key_pts: None,
            last_shown: Some(last_shown),
        }
    }

    #[test]
    fn a_state_continues_only_ahead_and_inside_the_keyframes_reach() {
        let w = want(40, 40, 30);
        assert!(w.can_continue(at(35, 330)));
        assert!(w.can_continue(at(41, 390)), "fed already, not yet shown");
        assert!(!w.can_continue(at(35, 400)), "already shown (and gone)");
        assert!(
            !w.can_continue(at(20, 190)),
            "before the keyframe: cold is cheaper"
        );
    }

    #[test]
    fn demuxed_states_continue_within_their_gop_or_the_unlisted_bound() {
        let listed = Want {
            movie: 1,
            target_pts: 1000,
            tolerance: 20,
            order_pos: 25,
            reach: Reach::Keyframes { key_pts: 800 },
        };
        let fed = |key_pts: i64, last_shown: i64| Progress {
            next_sample: None,
            key_pts: Some(key_pts),
            last_shown: Some(last_shown),
        };
        assert!(listed.can_continue(fed(800, 960)));
        assert!(!listed.can_continue(fed(400, 760)), "an earlier GOP");
        assert!(
            !listed.can_continue(fed(800, 995)),
            "shown, within half a frame"
        );
        let unlisted = Want {
            reach: Reach::Unlisted { ahead: 16 * 40 },
            ..listed
        };
        assert!(unlisted.can_continue(fed(0, 1000 - 16 * 40)));
        assert!(
            !unlisted.can_continue(fed(0, 1000 - 17 * 40)),
            "too far behind"
        );
    }

    #[test]
    fn requests_wait_for_a_decode_that_will_serve_them() {
        let errand = Errand {
            from_pts: Some(100),
            target_pts: 200,
            order_pos: 20,
            after: at(20, 200),
        };
        assert!(
            WarmPool::worth_waiting(&want(19, 19, 0), &errand),
            "passed on the way"
        );
        assert!(
            WarmPool::worth_waiting(&want(21, 21, 0), &errand),
            "just ahead"
        );
        assert!(
            !WarmPool::worth_waiting(&want(21, 21, 21), &errand),
            "own keyframe"
        );
        assert!(
            !WarmPool::worth_waiting(&want(5, 5, 0), &errand),
            "before its start"
        );
        assert!(
            !WarmPool::worth_waiting(&want(11, 11, 0), &errand),
            "not kept"
        );
    }

    #[test]
    fn a_dropped_checkout_leaves_no_entry_and_the_pool_stays_bounded() {
        let pool = WarmPool::new(WarmSettings::default());
        let deadline = Instant::now() + Duration::from_secs(1);
        match pool.lease(want(5, 5, 0), deadline) {
            Ok(Lease::Decode(checkout)) => drop(checkout),
            _ => panic!("an empty pool starts cold"),
        }
        assert!(pool.lock().list.is_empty());
        assert_eq!(pool.bytes(), 0);
    }
}
