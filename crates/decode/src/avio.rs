//! FFmpeg reads a movie only through these I/O callbacks over a [`ByteSource`]: no FFmpeg
//! protocols, no nested opens, one demuxer chosen by the file's extension, whitelisted
//! decoders, bounded bytes, streams and time.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ffmpeg_next::ffi;

use crate::decoder::DECODER_WHITELIST;
use crate::error::{Error, Result, av_error_string};
use crate::ffmpeg_log;
use crate::limits::{ANALYZE_DURATION_US, FORMAT_PROBE_BYTES, MAX_STREAMS, STREAM_PROBE_BYTES};
use crate::mp4_boxes::FragmentGate;
use crate::read_plan::{AVIO_BUFFER_SIZE, ReadPlan, RecentReads};
use crate::source::ByteSource;

/// FFmpeg's name of the QuickTime/MP4 demuxer (see [`DEMUXERS`]).
pub(crate) const MOV_DEMUXER: &str = "mov";

/// The containers the service opens, by file extension, and the one FFmpeg demuxer each may be
/// read with. The name says what a file is; FFmpeg's probe may only confirm it (the format
/// whitelist is that one demuxer, so a `.mov` that probes as anything else is refused). Nothing
/// else FFmpeg could probe (text, images, playlists, MPEG-PS, FLV, ASF, Ogg, NUT …) is opened,
/// which keeps demuxers with exotic parsers away from untrusted bytes.
pub(crate) const DEMUXERS: &[(&str, &str)] = &[
    ("mov", MOV_DEMUXER),
    ("mp4", MOV_DEMUXER),
    ("m4v", MOV_DEMUXER),
    ("mkv", "matroska"),
    ("webm", "matroska"),
    ("avi", "avi"),
    ("mxf", "mxf"),
    ("ts", "mpegts"),
];

/// The demuxer for `source`, from its file name's extension.
pub(crate) fn demuxer_for(source: &dyn ByteSource) -> Result<&'static str> {
    let Some(extension) = source.extension() else {
        return Err(Error::NotAMovie(
            "its name has no extension, so its container is unknown".into(),
        ));
    };
    let lower = extension.to_ascii_lowercase();
    if let Some((_, demuxer)) = DEMUXERS.iter().find(|(e, _)| *e == lower) {
        return Ok(demuxer);
    }
    let shown: String = extension.chars().take(16).collect();
    let known: Vec<&str> = DEMUXERS.iter().map(|(e, _)| *e).collect();
    Err(Error::NotAMovie(format!(
        "files ending in .{shown:?} are not movies (the extensions read are {})",
        known.join(", ")
    )))
}
/// State behind FFmpeg's opaque pointer: where we are, what it cost, what went wrong.
pub(crate) struct IoState {
    source: Arc<dyn ByteSource>,
    len: u64,
    pos: u64,
    /// Bytes fetched from the source (zero-filled ranges excluded).
    pub fetched: u64,
    fetch_cap: u64,
    deadline: Instant,
    timeout: std::time::Duration,
    /// The first error the callbacks hit; reported instead of FFmpeg's generic EIO.
    pub error: Option<Error>,
    /// Bytes read (and checked) before FFmpeg opened the file; reads inside them are answered
    /// from memory.
    known: KnownBytes,
    /// Sorted, disjoint byte ranges answered with zeros instead of being fetched: the sample
    /// data of a MOV while only its packet timestamps are wanted.
    zero_ranges: Vec<(u64, u64)>,
    sequential_end: u64,
    next_read: usize,
    plan: ReadPlan,
    /// The last reads, which answer FFmpeg's reads of the same bytes (only with a plan that
    /// keeps them: an index's). Known bytes and zero ranges still answer first.
    recent: RecentReads,
    /// Fetches stop at this byte (reads there answer end of file): a warm decode's lookahead
    /// past its target's packet (see `decoder/warm_demux.rs`). `u64::MAX`: no stop.
    stop_at: u64,
    /// Set when a read met `stop_at`: what the demuxer gives from then on may be cut short.
    pub stopped: bool,
    /// A fragmented MP4 read by its index of fragments (`mfra` or `sidx`): each `moof` is
    /// checked before FFmpeg reads it.
    gate: Option<FragmentGate>,
}

impl IoState {
    fn read(&mut self, buf: &mut [u8]) -> std::result::Result<usize, Error> {
        if Instant::now() > self.deadline {
            return Err(Error::DecodeTimeout(self.timeout));
        }
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        // A fragment found off the movie's frame grid ends the movie there (see FragmentGate).
        let end = self
            .gate
            .as_ref()
            .map_or(self.len, |g| g.broken_from.min(self.len));
        if self.pos >= end {
            return Ok(0);
        }
        let remaining = end - self.pos;
        let max = (buf.len() as u64).min(remaining) as usize;
        if let Some(known) = self.known.at(self.pos) {
            let n = known.len().min(max);
            if self.check_fragments(self.pos + n as u64)? {
                return self.read(buf);
            }
            buf[..n].copy_from_slice(&known[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        if let Some(zero_end) = self.zero_run_end(self.pos) {
            let n = ((zero_end - self.pos) as usize).min(max);
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        if let Some(recent) = self.recent.at(self.pos) {
            let n = recent.len().min(max);
            buf[..n].copy_from_slice(&recent[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let continued = if self.pos == self.sequential_end {
            Some(self.next_read)
        } else {
            self.recent.continuing(self.pos)
        };
        self.next_read = continued.map_or(self.plan.first, |last| self.plan.after(last));
        let mut want = if self.plan.keep > 0 {
            // Beyond what FFmpeg asked for, at most half of what is left of the cap: reading
            // ahead never spends the budget that later reads (an index at the end) need.
            let spare = usize::try_from(self.fetch_cap.saturating_sub(self.fetched) / 2)
                .unwrap_or(usize::MAX);
            let to_end = usize::try_from(remaining).unwrap_or(usize::MAX);
            self.next_read.min(max.max(spare)).min(to_end)
        } else {
            self.next_read.min(max)
        };
        if let Some(next_zero) = self.next_zero_start(self.pos) {
            want = want.min((next_zero - self.pos) as usize);
        }
        if let Some(next_known) = self.known.next_start(self.pos) {
            want = want.min(usize::try_from(next_known - self.pos).unwrap_or(usize::MAX));
        }
        if self.pos >= self.stop_at {
            self.stopped = true;
            return Ok(0);
        }
        want = want.min(usize::try_from(self.stop_at - self.pos).unwrap_or(usize::MAX));
        if self.check_fragments(self.pos + want as u64)? {
            return self.read(buf);
        }
        if self.plan.keep > 0 {
            let start = match continued {
                Some(_) => self.pos,
                None => self.plan.start_of(self.pos, end),
            };
            return self.fetch_kept(start, want, buf);
        }
        if self.fetched + want as u64 > self.fetch_cap {
            return Err(self.over_cap());
        }
        let bytes = self.fetch(self.pos, want)?;
        let got = bytes.len().min(want);
        if got == 0 {
            return Err(self.truncated());
        }
        let n = got.min(max);
        buf[..n].copy_from_slice(&bytes[..n]);
        self.fetched += n as u64;
        self.pos += n as u64;
        self.sequential_end = self.pos;
        Ok(n)
    }

    /// A read for a plan that keeps its reads: from `start` (at or before the position) through
    /// `want` bytes past the position, kept, and answered from there.
    fn fetch_kept(
        &mut self,
        start: u64,
        want: usize,
        buf: &mut [u8],
    ) -> std::result::Result<usize, Error> {
        let before = usize::try_from(self.pos - start).unwrap_or(usize::MAX);
        let len = want.saturating_add(before);
        if self.fetched + len as u64 > self.fetch_cap {
            return Err(self.over_cap());
        }
        let bytes = self.fetch(start, len)?;
        let got = bytes.len().min(len);
        if got <= before {
            return Err(self.truncated());
        }
        self.fetched += got as u64;
        self.sequential_end = start + got as u64;
        self.recent
            .push(start, bytes.slice(..got), self.next_read, self.plan.keep);
        self.read(buf)
    }

    /// `len` bytes at `start` from the source. Past a warm decode's target (a stop is set),
    /// bytes are lookahead: fetched exactly, without the origin's read-ahead.
    fn fetch(&self, start: u64, len: usize) -> std::result::Result<Bytes, Error> {
        let bytes = if self.stop_at == u64::MAX {
            self.source.read_at(start, len)?
        } else {
            self.source.read_lookahead_at(start, len)?
        };
        Ok(bytes)
    }

    fn over_cap(&self) -> Error {
        Error::IndexTooLarge(format!(
            "reading it needs more than {} bytes (the configured cap)",
            self.fetch_cap
        ))
    }

    fn truncated(&self) -> Error {
        Error::Truncated(format!(
            "{} ended at byte {} but claims {} bytes",
            self.source.describe(),
            self.pos,
            self.len
        ))
    }

    /// Checks fragment `i` of a fragmented MP4 read by its index (when not yet), and refuses
    /// its frames when its samples break the movie's frame numbering.
    fn require_fragment(&mut self, i: usize) -> Result<()> {
        let Some(gate) = self.gate.as_mut() else {
            return Ok(());
        };
        if !gate.is_checked(i) {
            let (at, bytes) = gate.check(&*self.source, i)?;
            self.fetched += bytes.len() as u64;
            self.known.insert(at, bytes);
        }
        match self.gate.as_ref().and_then(|g| g.refusal(i)) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// Checks the first fragment not checked yet whose `moof` starts between the position and
    /// `end` (a read is about to hand FFmpeg those bytes), keeping its bytes; true when one
    /// was (the read starts again, from them or up to them).
    fn check_fragments(&mut self, end: u64) -> std::result::Result<bool, Error> {
        let Some(gate) = self.gate.as_mut() else {
            return Ok(false);
        };
        let Some(fragment) = gate.unchecked_in(self.pos, end) else {
            return Ok(false);
        };
        let (at, bytes) = gate.check(&*self.source, fragment)?;
        self.fetched += bytes.len() as u64;
        self.known.insert(at, bytes);
        Ok(true)
    }

    fn zero_run_end(&self, pos: u64) -> Option<u64> {
        let i = self.zero_ranges.partition_point(|&(_, end)| end <= pos);
        let &(start, end) = self.zero_ranges.get(i)?;
        (start <= pos).then_some(end)
    }

    fn next_zero_start(&self, pos: u64) -> Option<u64> {
        let i = self.zero_ranges.partition_point(|&(start, _)| start <= pos);
        self.zero_ranges.get(i).map(|&(start, _)| start)
    }

    fn seek(&mut self, offset: i64, whence: c_int) -> i64 {
        let whence = whence & !ffi::AVSEEK_FORCE;
        if whence == ffi::AVSEEK_SIZE {
            return i64::try_from(self.len).unwrap_or(-1);
        }
        let base = match whence {
            libc_seek::SEEK_SET => 0,
            libc_seek::SEEK_CUR => self.pos as i64,
            libc_seek::SEEK_END => self.len as i64,
            _ => return -1,
        };
        match base.checked_add(offset) {
            Some(target) if target >= 0 => {
                self.pos = target as u64;
                target
            }
            _ => -1,
        }
    }
}

mod libc_seek {
    pub const SEEK_SET: i32 = 0;
    pub const SEEK_CUR: i32 = 1;
    pub const SEEK_END: i32 = 2;
}

/// FFmpeg's interrupt callback: 1 (stop) once the decode's deadline has passed.
///
/// # Safety
/// `opaque` is the `IoState` owned by the `Demuxer` whose context calls this.
unsafe extern "C" fn past_deadline(opaque: *mut c_void) -> c_int {
    // SAFETY: per the contract; only read, on the thread that owns the demuxer.
    let state = unsafe { &*(opaque as *const IoState) };
    c_int::from(Instant::now() > state.deadline)
}

unsafe extern "C" fn read_packet(opaque: *mut c_void, buf: *mut u8, buf_size: c_int) -> c_int {
    // SAFETY: opaque is the IoState boxed by Demuxer, alive for the context's lifetime; FFmpeg
    // gives a writable buffer of buf_size bytes and never calls us concurrently for one context.
    let state = unsafe { &mut *(opaque as *mut IoState) };
    let Ok(size) = usize::try_from(buf_size) else {
        return ffi::AVERROR(ffi::EINVAL);
    };
    let buf = unsafe { std::slice::from_raw_parts_mut(buf, size) };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.read(buf))) {
        Ok(Ok(0)) => ffi::AVERROR_EOF,
        Ok(Ok(n)) => n as c_int,
        Ok(Err(e)) => {
            state.error.get_or_insert(e);
            ffi::AVERROR(ffi::EIO)
        }
        Err(_) => ffi::AVERROR(ffi::EIO),
    }
}

unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in read_packet.
    let state = unsafe { &mut *(opaque as *mut IoState) };
    state.seek(offset, whence)
}

/// Demuxers that would open other files (HLS, concat, MOV data references …) get a refusal.
unsafe extern "C" fn refuse_nested_open(
    _s: *mut ffi::AVFormatContext,
    _pb: *mut *mut ffi::AVIOContext,
    _url: *const c_char,
    _flags: c_int,
    _options: *mut *mut ffi::AVDictionary,
) -> c_int {
    ffi::AVERROR(ffi::EPERM)
}

/// An open demuxer reading through our callbacks; frees everything on drop, in order.
pub(crate) struct Demuxer {
    ctx: *mut ffi::AVFormatContext,
    avio: *mut ffi::AVIOContext,
    state: Box<IoState>,
}

// SAFETY: the FFmpeg contexts are owned exclusively by this value and only used through &mut.
unsafe impl Send for Demuxer {}

impl Demuxer {
    /// Opens `source` as the container its extension names, reading at most `fetch_cap` bytes
    /// (those in `known` included, which are answered from memory) within `timeout`. Every
    /// stream but the video ones is discarded before anything analyses them.
    pub fn open(
        source: Arc<dyn ByteSource>,
        known: KnownBytes,
        fetch_cap: u64,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        Self::open_with(source, known, fetch_cap, timeout, None, ReadPlan::FRAMES)
    }

    /// [`Demuxer::open`] to learn a Matroska, AVI, MXF or MPEG-TS movie's index: in fewer,
    /// larger reads ([`ReadPlan::INDEX`]).
    pub fn open_to_index(
        source: Arc<dyn ByteSource>,
        fetch_cap: u64,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        Self::open_with(
            source,
            KnownBytes::default(),
            fetch_cap,
            timeout,
            None,
            ReadPlan::INDEX,
        )
    }

    /// [`Demuxer::open`] for a fragmented MP4 whose `mfra` or `sidx` lists its fragments
    /// (checked by `mp4_boxes.rs`): FFmpeg reads that index instead of every `moof`
    /// (`use_mfra_for`, by presentation time: the times an `mfra` lists are the fragments' first
    /// shown frames; a `sidx` to the end of the file is used by FFmpeg anyway), reads a
    /// fragment's `moof` when it gets there, and `gate` checks each such `moof` first.
    pub fn open_fragmented(
        source: Arc<dyn ByteSource>,
        known: KnownBytes,
        fetch_cap: u64,
        timeout: std::time::Duration,
        gate: FragmentGate,
    ) -> Result<Self> {
        Self::open_with(
            source,
            known,
            fetch_cap,
            timeout,
            Some(gate),
            ReadPlan::FRAMES,
        )
    }

    fn open_with(
        source: Arc<dyn ByteSource>,
        known: KnownBytes,
        fetch_cap: u64,
        timeout: std::time::Duration,
        gate: Option<FragmentGate>,
        plan: ReadPlan,
    ) -> Result<Self> {
        let use_mfra = gate.is_some();
        let format = demuxer_for(&*source)?;
        ffmpeg_log::init();
        ffmpeg_log::clear_last_error();
        let mut state = Box::new(IoState {
            len: source.len(),
            source,
            pos: 0,
            fetched: known.fetched,
            known,
            fetch_cap,
            // The decode's own deadline when one runs on this thread (it started earlier).
            deadline: crate::deadline::or_from_now(timeout),
            timeout,
            error: None,
            zero_ranges: Vec::new(),
            sequential_end: u64::MAX,
            next_read: plan.first,
            plan,
            recent: RecentReads::default(),
            stop_at: u64::MAX,
            stopped: false,
            gate,
        });
        // SAFETY: plain allocation calls; every pointer is checked and owned by `Demuxer` below,
        // whose Drop releases them (also on the error paths, once `demuxer` exists).
        unsafe {
            let buffer = ffi::av_malloc(AVIO_BUFFER_SIZE) as *mut u8;
            if buffer.is_null() {
                return Err(Error::Decode("out of memory for the I/O buffer".into()));
            }
            let opaque = &mut *state as *mut IoState as *mut c_void;
            let avio = ffi::avio_alloc_context(
                buffer,
                AVIO_BUFFER_SIZE as c_int,
                0,
                opaque,
                Some(read_packet),
                None,
                Some(seek),
            );
            if avio.is_null() {
                ffi::av_free(buffer as *mut c_void);
                return Err(Error::Decode("out of memory for the I/O context".into()));
            }
            let mut demuxer = Demuxer {
                ctx: ptr::null_mut(),
                avio,
                state,
            };
            let mut ctx = ffi::avformat_alloc_context();
            if ctx.is_null() {
                return Err(Error::Decode("out of memory for the format context".into()));
            }
            (*ctx).pb = avio;
            (*ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO;
            // FFmpeg's own loops (probing, stream analysis, seeking) stop at the deadline too.
            (*ctx).interrupt_callback = ffi::AVIOInterruptCB {
                callback: Some(past_deadline),
                opaque,
            };
            (*ctx).io_open = Some(refuse_nested_open);
            let formats = CString::new(format).unwrap_or_default();
            (*ctx).format_whitelist = ffi::av_strdup(formats.as_ptr());
            let decoders = CString::new(DECODER_WHITELIST).unwrap_or_default();
            (*ctx).codec_whitelist = ffi::av_strdup(decoders.as_ptr());
            (*ctx).format_probesize = FORMAT_PROBE_BYTES;
            (*ctx).probesize = STREAM_PROBE_BYTES;
            (*ctx).max_analyze_duration = ANALYZE_DURATION_US;
            (*ctx).max_streams = MAX_STREAMS;
            if (*ctx).format_whitelist.is_null() || (*ctx).codec_whitelist.is_null() {
                ffi::avformat_free_context(ctx);
                return Err(Error::Decode("out of memory for the whitelists".into()));
            }
            let empty = CString::default();
            let mut options: *mut ffi::AVDictionary = ptr::null_mut();
            if use_mfra
                && ffi::av_dict_set(&mut options, c"use_mfra_for".as_ptr(), c"pts".as_ptr(), 0) < 0
            {
                ffi::avformat_free_context(ctx);
                return Err(Error::Decode(
                    "out of memory for the demuxer's options".into(),
                ));
            }
            // On failure avformat_open_input frees ctx and sets it to null.
            let ret = ffi::avformat_open_input(&mut ctx, empty.as_ptr(), ptr::null(), &mut options);
            ffi::av_dict_free(&mut options);
            demuxer.ctx = ctx;
            if ret < 0 {
                return Err(demuxer.open_error(ret));
            }
            // Only video is ever read: other streams are neither analysed nor demuxed.
            for i in 0..(*ctx).nb_streams as usize {
                let st = *(*ctx).streams.add(i);
                if !st.is_null()
                    && ((*st).codecpar.is_null()
                        || (*(*st).codecpar).codec_type != ffi::AVMediaType::AVMEDIA_TYPE_VIDEO)
                {
                    (*st).discard = ffi::AVDiscard::AVDISCARD_ALL;
                }
            }
            Ok(demuxer)
        }
    }

    /// Before seeking a fragmented MP4 read by its `mfra` to `pts`: checks the fragment whose
    /// frames start there, and refuses them (in words) when it breaks the movie's numbering —
    /// rather than the demuxer meeting the end of the movie there.
    pub fn require_fragment_at(&mut self, pts: i64) -> Result<()> {
        match self.state.gate.as_ref().and_then(|g| g.fragment_at(pts)) {
            Some(i) => self.state.require_fragment(i),
            None => Ok(()),
        }
    }

    /// The error to report for a failed FFmpeg call: ours from the callbacks if there was one,
    /// else what FFmpeg logged or returned.
    pub fn open_error(&mut self, ret: c_int) -> Error {
        if let Some(e) = self.take_io_error() {
            return e;
        }
        let said = ffmpeg_log::take_last_error().unwrap_or_else(|| av_error_string(ret));
        Error::NotAMovie(said)
    }

    /// Reads the next packet into `packet`, releasing what it held; `Ok(false)` at the end of
    /// the movie. A failed read is the source's error when a callback recorded one (or the
    /// deadline's), else a demuxing error.
    pub fn read_packet(&mut self, packet: &mut ffmpeg_next::Packet) -> Result<bool> {
        // SAFETY: the context is open and owned by self; av_read_frame overwrites the packet
        // without freeing what it held: unreference it first, or every packet read leaks.
        let ret = unsafe {
            let raw = ffmpeg_next::packet::Mut::as_mut_ptr(packet);
            ffi::av_packet_unref(raw);
            ffi::av_read_frame(self.ctx, raw)
        };
        if ret == ffi::AVERROR_EOF {
            return Ok(false);
        }
        if ret < 0 {
            if let Some(e) = self.take_io_error() {
                return Err(e);
            }
            return Err(Error::Decode(format!(
                "demuxing stopped early: {}",
                av_error_string(ret)
            )));
        }
        Ok(true)
    }

    /// Takes the error a callback recorded, if any — or, once the deadline has passed (FFmpeg
    /// then stops at its interrupt callback with a generic error), the deadline's.
    pub fn take_io_error(&mut self) -> Option<Error> {
        self.state.error.take().or_else(|| {
            (Instant::now() > self.state.deadline)
                .then_some(Error::DecodeTimeout(self.state.timeout))
        })
    }

    /// From now on, answer reads of these bytes from memory: they were read from the source
    /// already (see `decoder/ts_seek.rs`).
    pub fn add_known_bytes(&mut self, known: KnownBytes) {
        for (start, bytes) in known.pieces {
            self.state.known.insert(start, bytes);
        }
    }

    /// A kept demuxer continued by a later request works to that request's deadline: its reads
    /// (and FFmpeg's interrupt callback) stop there, not at the deadline of the request that
    /// opened it.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.state.deadline = deadline;
    }

    /// Fetch nothing at or past byte `stop` (reads there answer end of file); `u64::MAX` lifts
    /// it. Bytes already known are still answered.
    pub fn stop_fetching_at(&mut self, stop: u64) {
        self.state.stop_at = stop;
    }

    /// Whether a read met the stop set by [`Demuxer::stop_fetching_at`]: the demuxer has seen
    /// an end of file there, so packets from then on may be cut short and it cannot go on.
    pub fn stopped(&self) -> bool {
        self.state.stopped
    }

    /// Where the next byte the demuxer asks for comes from (its AVIO buffer may hold bytes
    /// before it, not yet parsed).
    pub fn io_position(&self) -> u64 {
        self.state.pos
    }

    /// Drops known bytes wholly before `pos` (a kept demuxer reads forward only), and returns
    /// the bytes still held.
    pub fn forget_known_before(&mut self, pos: u64) -> u64 {
        self.state.known.forget_before(pos);
        self.state.known.len()
    }

    /// `len` bytes at `pos` for our own checks: from the reads kept (an index's demuxer), else
    /// from the source, counted like FFmpeg's.
    pub fn read_at(&mut self, pos: u64, len: usize) -> Result<Bytes> {
        if let Some(kept) = self.state.recent.at(pos).filter(|b| b.len() >= len) {
            return Ok(kept.slice(..len));
        }
        let bytes = self.state.source.read_at(pos, len)?;
        self.state.fetched += bytes.len() as u64;
        Ok(bytes)
    }

    /// Bytes fetched from the source so far (known bytes included, zero-filled ranges not).
    pub fn fetched(&self) -> u64 {
        self.state.fetched
    }

    pub fn ctx(&mut self) -> *mut ffi::AVFormatContext {
        self.ctx
    }

    /// The demuxer's name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
    pub fn format_name(&self) -> String {
        // SAFETY: ctx is open; iformat and its name are static strings of libavformat.
        unsafe {
            let iformat = (*self.ctx).iformat;
            if iformat.is_null() || (*iformat).name.is_null() {
                return String::new();
            }
            CStr::from_ptr((*iformat).name)
                .to_string_lossy()
                .into_owned()
        }
    }

    /// From now on, answer reads inside these byte ranges with zeros (see [`IoState`]).
    pub fn set_zero_ranges(&mut self, mut ranges: Vec<(u64, u64)>) {
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.state.zero_ranges = merged;
    }
}

/// Bytes of the source read before FFmpeg opened it (the atoms `mp4_boxes` checked): sorted,
/// disjoint pieces that answer FFmpeg's reads of the same ranges instead of the source.
#[derive(Debug, Default)]
pub(crate) struct KnownBytes {
    pieces: Vec<(u64, Bytes)>,
    /// The pieces' total length.
    held: u64,
    /// Bytes fetched from the source to learn them (they count toward the index byte cap).
    pub fetched: u64,
}

impl KnownBytes {
    /// Overwrites known bytes at `pos` with `with` (what FFmpeg is to read there instead);
    /// false, changing nothing, when they are not all known.
    pub fn overwrite(&mut self, pos: u64, with: &[u8]) -> bool {
        let after = self.pieces.partition_point(|(start, _)| *start <= pos);
        let Some((start, bytes)) = after.checked_sub(1).and_then(|i| self.pieces.get_mut(i)) else {
            return false;
        };
        let Some(at) = usize::try_from(pos - *start).ok() else {
            return false;
        };
        let mut edited = bytes.to_vec();
        let Some(slot) = at
            .checked_add(with.len())
            .and_then(|end| edited.get_mut(at..end))
        else {
            return false;
        };
        slot.copy_from_slice(with);
        *bytes = Bytes::from(edited);
        true
    }

    /// The known bytes from `pos` to the end of the piece holding it.
    pub fn at(&self, pos: u64) -> Option<Bytes> {
        let after = self.pieces.partition_point(|(start, _)| *start <= pos);
        let (start, bytes) = self.pieces.get(after.checked_sub(1)?)?;
        let from = usize::try_from(pos - start).ok()?;
        (from < bytes.len()).then(|| bytes.slice(from..))
    }

    /// Where the first piece after `pos` starts.
    pub fn next_start(&self, pos: u64) -> Option<u64> {
        let after = self.pieces.partition_point(|(start, _)| *start <= pos);
        self.pieces.get(after).map(|(start, _)| *start)
    }

    /// Bytes held.
    pub fn len(&self) -> u64 {
        self.held
    }

    /// Drops the pieces that end at or before `pos`.
    pub fn forget_before(&mut self, pos: u64) {
        let mut dropped = 0u64;
        self.pieces.retain(|(start, bytes)| {
            let keep = start.saturating_add(bytes.len() as u64) > pos;
            if !keep {
                dropped += bytes.len() as u64;
            }
            keep
        });
        self.held = self.held.saturating_sub(dropped);
    }

    /// The known bytes from `pos` on, through pieces that follow each other without a gap, up
    /// to `max_len` bytes (copied only when they span pieces).
    pub fn contiguous(&self, pos: u64, max_len: usize) -> Option<Bytes> {
        let first = self.at(pos)?;
        if first.len() >= max_len {
            return Some(first.slice(..max_len));
        }
        let mut joined = first.to_vec();
        while joined.len() < max_len {
            let Some(next) = self.at(pos.saturating_add(joined.len() as u64)) else {
                break;
            };
            let take = next.len().min(max_len - joined.len());
            joined.extend_from_slice(&next[..take]);
        }
        Some(Bytes::from(joined))
    }

    /// Adds the bytes at `start`, merged with the pieces they overlap. Pieces that only touch
    /// stay apart: merging them would copy everything read so far at each sequential read.
    pub fn insert(&mut self, start: u64, bytes: Bytes) {
        let end_of = |s: u64, b: &Bytes| s.saturating_add(b.len() as u64);
        let end = end_of(start, &bytes);
        if bytes.is_empty() {
            return;
        }
        let first = self.pieces.partition_point(|(s, b)| end_of(*s, b) <= start);
        let last = self.pieces.partition_point(|(s, _)| *s < end);
        let Some(touched) = self.pieces.get(first..last).filter(|t| !t.is_empty()) else {
            self.held = self.held.saturating_add(bytes.len() as u64);
            self.pieces.insert(first, (start, bytes));
            return;
        };
        let merged_start = touched.iter().map(|(s, _)| *s).fold(start, u64::min);
        let merged_end = touched
            .iter()
            .map(|(s, b)| end_of(*s, b))
            .fold(end, u64::max);
        let Ok(len) = usize::try_from(merged_end - merged_start) else {
            return;
        };
        let mut merged = vec![0u8; len];
        for (s, b) in touched.iter().chain(std::iter::once(&(start, bytes))) {
            let at = usize::try_from(s - merged_start).unwrap_or(usize::MAX);
            if let Some(slot) = at
                .checked_add(b.len())
                .and_then(|stop| merged.get_mut(at..stop))
            {
                slot.copy_from_slice(b);
            }
        }
        let replaced: u64 = touched.iter().map(|(_, b)| b.len() as u64).sum();
        self.held = self
            .held
            .saturating_sub(replaced)
            .saturating_add(merged.len() as u64);
        self.pieces
            .splice(first..last, [(merged_start, Bytes::from(merged))]);
    }
}

impl Drop for Demuxer {
    fn drop(&mut self) {
        // SAFETY: ctx (if any) was opened by avformat_open_input with our custom pb, which
        // avformat_close_input leaves alone (AVFMT_FLAG_CUSTOM_IO); we free pb and its buffer after.
        unsafe {
            if !self.ctx.is_null() {
                ffi::avformat_close_input(&mut self.ctx);
            }
            if !self.avio.is_null() {
                ffi::av_freep(&mut (*self.avio).buffer as *mut *mut u8 as *mut c_void);
                ffi::avio_context_free(&mut self.avio);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes_merge_and_answer_reads() {
        let mut known = KnownBytes::default();
        known.insert(100, Bytes::from_static(b"abcd"));
        known.insert(10, Bytes::from_static(b"xy"));
        assert_eq!(known.len(), 6);
        assert_eq!(known.at(101).unwrap(), &b"bcd"[..]);
        assert!(known.at(104).is_none() && known.at(99).is_none() && known.at(12).is_none());
        assert_eq!(known.next_start(11), Some(100));
        assert_eq!(known.next_start(100), None);
        // Overlapping pieces merge into one; touching ones stay apart, and read as one.
        known.insert(102, Bytes::from_static(b"cdef"));
        assert_eq!(known.at(100).unwrap(), &b"abcdef"[..]);
        known.insert(96, Bytes::from_static(b"1234"));
        assert_eq!(known.len(), 2 + 10);
        assert_eq!(known.at(96).unwrap(), &b"1234"[..]);
        assert_eq!(known.contiguous(96, 100).unwrap(), &b"1234abcdef"[..]);
        assert_eq!(known.contiguous(97, 5).unwrap(), &b"234ab"[..]);
        assert_eq!(known.contiguous(101, 2).unwrap(), &b"bc"[..]);
        known.insert(0, Bytes::new());
        assert_eq!(known.pieces.len(), 3);
        // Near the end of the address space nothing overflows.
        known.insert(u64::MAX - 1, Bytes::from_static(b"zz"));
        assert_eq!(known.at(u64::MAX - 1).unwrap(), &b"zz"[..]);
    }

    #[test]
    fn extensions_choose_one_demuxer() {
        struct Named(&'static str);
        impl ByteSource for Named {
            fn len(&self) -> u64 {
                0
            }
            fn validator(&self) -> &str {
                ""
            }
            fn read_at(&self, _: u64, _: usize) -> Result<Bytes, crate::SourceError> {
                Ok(Bytes::new())
            }
            fn describe(&self) -> String {
                self.0.into()
            }
            fn extension(&self) -> Option<String> {
                std::path::Path::new(self.0)
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
            }
        }
        for (name, demuxer) in [
            ("a.MOV", "mov"),
            ("a.mp4", "mov"),
            ("a.m4v", "mov"),
            ("a.mkv", "matroska"),
            ("a.webm", "matroska"),
            ("a.avi", "avi"),
            ("a.mxf", "mxf"),
            ("a.ts", "mpegts"),
        ] {
            assert_eq!(demuxer_for(&Named(name)).unwrap(), demuxer, "{name}");
        }
        for name in [
            "a.mpg",
            "a.flv",
            "a.asf",
            "a.ogv",
            "a.nut",
            "a",
            "a.mov.txt",
        ] {
            assert!(
                matches!(demuxer_for(&Named(name)), Err(Error::NotAMovie(_))),
                "{name}"
            );
        }
    }
}
