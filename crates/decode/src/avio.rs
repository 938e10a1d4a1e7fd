//! FFmpeg reads a movie only through these I/O callbacks over a [`ByteSource`]: no FFmpeg
//! protocols, no nested opens, bounded bytes and time.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::ffi;

use crate::error::{Error, Result, av_error_string};
use crate::ffmpeg_log;
use crate::source::ByteSource;

/// Containers the service opens. Anything else FFmpeg could probe (text, images, playlists …)
/// is refused, which also keeps demuxers with exotic parsers away from untrusted bytes.
const FORMAT_WHITELIST: &str = "mov,matroska,avi,mxf,mpegts,mpeg,flv,asf,ogg,nut";
const AVIO_BUFFER_SIZE: usize = 256 * 1024;
/// First read at a new position; doubles while reads stay sequential. Keeps a probe of a
/// moov-at-end file to the atom headers and the moov itself.
const INITIAL_READ: usize = 16 * 1024;

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
    /// Sorted, disjoint byte ranges answered with zeros instead of being fetched: the sample
    /// data of a MOV while only its packet timestamps are wanted.
    zero_ranges: Vec<(u64, u64)>,
    sequential_end: u64,
    next_read: usize,
}

impl IoState {
    fn read(&mut self, buf: &mut [u8]) -> std::result::Result<usize, Error> {
        if Instant::now() > self.deadline {
            return Err(Error::DecodeTimeout(self.timeout));
        }
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.len - self.pos;
        let max = (buf.len() as u64).min(remaining) as usize;
        if let Some(zero_end) = self.zero_run_end(self.pos) {
            let n = ((zero_end - self.pos) as usize).min(max);
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        self.next_read = if self.pos == self.sequential_end {
            (self.next_read * 2).min(AVIO_BUFFER_SIZE)
        } else {
            INITIAL_READ
        };
        let mut want = self.next_read.min(max);
        if let Some(next_zero) = self.next_zero_start(self.pos) {
            want = want.min((next_zero - self.pos) as usize);
        }
        if self.fetched + want as u64 > self.fetch_cap {
            return Err(Error::IndexTooLarge(format!(
                "reading it needs more than {} bytes (the configured cap)",
                self.fetch_cap
            )));
        }
        let bytes = self.source.read_at(self.pos, want)?;
        let n = bytes.len().min(want);
        if n == 0 {
            return Err(Error::Truncated(format!(
                "{} ended at byte {} but claims {} bytes",
                self.source.describe(),
                self.pos,
                self.len
            )));
        }
        buf[..n].copy_from_slice(&bytes[..n]);
        self.fetched += n as u64;
        self.pos += n as u64;
        self.sequential_end = self.pos;
        Ok(n)
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
    /// Opens `source` as a container, reading at most `fetch_cap` bytes before `deadline`.
    pub fn open(
        source: Arc<dyn ByteSource>,
        fetch_cap: u64,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        ffmpeg_log::init();
        ffmpeg_log::clear_last_error();
        let mut state = Box::new(IoState {
            len: source.len(),
            source,
            pos: 0,
            fetched: 0,
            fetch_cap,
            deadline: Instant::now() + timeout,
            timeout,
            error: None,
            zero_ranges: Vec::new(),
            sequential_end: u64::MAX,
            next_read: INITIAL_READ,
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
            (*ctx).io_open = Some(refuse_nested_open);
            let whitelist = CString::new(FORMAT_WHITELIST).unwrap_or_default();
            (*ctx).format_whitelist = ffi::av_strdup(whitelist.as_ptr());
            let empty = CString::default();
            // On failure avformat_open_input frees ctx and sets it to null.
            let ret =
                ffi::avformat_open_input(&mut ctx, empty.as_ptr(), ptr::null(), ptr::null_mut());
            demuxer.ctx = ctx;
            if ret < 0 {
                return Err(demuxer.open_error(ret));
            }
            Ok(demuxer)
        }
    }

    /// The error to report for a failed FFmpeg call: ours from the callbacks if there was one,
    /// else what FFmpeg logged or returned.
    pub fn open_error(&mut self, ret: c_int) -> Error {
        if let Some(e) = self.state.error.take() {
            return e;
        }
        let said = ffmpeg_log::take_last_error().unwrap_or_else(|| av_error_string(ret));
        Error::NotAMovie(said)
    }

    /// Takes the error a callback recorded, if any.
    pub fn take_io_error(&mut self) -> Option<Error> {
        self.state.error.take()
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
