//! An FFmpeg muxer writing a clip through our own callbacks into any `Write + Seek` (a temporary
//! file in the service), never to a path: the stream's parameters come from the movie's index.

use std::ffi::{CString, c_int, c_void};
use std::io::{Seek, SeekFrom, Write};
use std::ptr;

use ffmpeg_next::ffi;

use super::ClipFormat;
use crate::error::{Error, Result, av_error_string};
use crate::index::{MovieIndex, fill_codec_parameters};

/// The muxer's write buffer.
const IO_BUFFER: usize = 64 * 1024;

/// One coded sample as the clip gets it: times in the movie's stream time base, already moved so
/// that frame A is shown at zero; without a duration, one frame's.
pub(super) struct Coded {
    pub pts: i64,
    pub dts: i64,
    pub duration: Option<i64>,
    pub keyframe: bool,
}

/// Where the muxer's bytes go, and the first write error (FFmpeg only sees a code).
struct Sink<'a> {
    out: &'a mut dyn WriteSeek,
    error: Option<std::io::Error>,
}

trait WriteSeek: Write + Seek {}
impl<T: Write + Seek> WriteSeek for T {}

unsafe extern "C" fn write_packet(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    // SAFETY: opaque is the Sink owned by the Muxer for the AVIO context's whole life; buf
    // holds `size` bytes for this call.
    let sink = unsafe { &mut *(opaque as *mut Sink<'_>) };
    let Ok(len) = usize::try_from(size) else {
        return ffi::AVERROR(EINVAL);
    };
    let data = unsafe { std::slice::from_raw_parts(buf, len) };
    match sink.out.write_all(data) {
        Ok(()) => size,
        Err(error) => {
            sink.error = Some(error);
            ffi::AVERROR(EIO)
        }
    }
}

unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in write_packet.
    let sink = unsafe { &mut *(opaque as *mut Sink<'_>) };
    let target = match whence & !ffi::AVSEEK_FORCE {
        0 => u64::try_from(offset).ok().map(SeekFrom::Start),
        1 => Some(SeekFrom::Current(offset)),
        2 => Some(SeekFrom::End(offset)),
        // AVSEEK_SIZE: the size is unknown while writing.
        _ => None,
    };
    match target.map(|to| sink.out.seek(to)) {
        Some(Ok(position)) => i64::try_from(position).unwrap_or(-1),
        Some(Err(error)) => {
            sink.error = Some(error);
            i64::from(ffi::AVERROR(EIO))
        }
        None => -1,
    }
}

const EIO: c_int = 5;
const EINVAL: c_int = 22;

/// An output format context writing into a [`Sink`], freed on drop.
pub(super) struct Muxer<'a> {
    ctx: *mut ffi::AVFormatContext,
    sink: Box<Sink<'a>>,
    /// The movie's stream time base, which samples' times are in.
    source_time_base: ffi::AVRational,
    /// The clip stream's, chosen by the muxer.
    time_base: ffi::AVRational,
    frame_duration: i64,
    header_written: bool,
}

impl<'a> Muxer<'a> {
    pub(super) fn open<W: Write + Seek>(
        index: &MovieIndex,
        format: ClipFormat,
        out: &'a mut W,
    ) -> Result<Self> {
        let name = CString::new(format.muxer()).map_err(|_| Error::Encode("muxer name".into()))?;
        let sink = Box::new(Sink { out, error: None });
        let (num, den) = index.time_base;
        let (rate_num, rate_den) = index.frame_rate;
        let frame_duration = index.frames_in_time_base(1).unwrap_or(1);
        // SAFETY: FFmpeg allocations owned by the Muxer (freed in Drop); the AVIO context's
        // opaque is the boxed Sink, which outlives it.
        unsafe {
            let mut ctx = ptr::null_mut();
            let ret = ffi::avformat_alloc_output_context2(
                &mut ctx,
                ptr::null_mut(),
                name.as_ptr(),
                ptr::null(),
            );
            if ret < 0 || ctx.is_null() {
                return Err(Error::Encode(format!(
                    "cannot make a {} muxer: {}",
                    format.extension(),
                    av_error_string(ret)
                )));
            }
            let mut muxer = Self {
                ctx,
                sink,
                source_time_base: ffi::AVRational { num, den },
                time_base: ffi::AVRational { num, den },
                frame_duration: frame_duration.max(1),
                header_written: false,
            };
            let buffer = ffi::av_malloc(IO_BUFFER) as *mut u8;
            if buffer.is_null() {
                return Err(Error::Encode("out of memory for the muxer".into()));
            }
            let opaque = &mut *muxer.sink as *mut Sink<'_> as *mut c_void;
            let pb = ffi::avio_alloc_context(
                buffer,
                IO_BUFFER as c_int,
                1,
                opaque,
                None,
                Some(write_packet),
                Some(seek),
            );
            if pb.is_null() {
                ffi::av_free(buffer as *mut c_void);
                return Err(Error::Encode("out of memory for the muxer".into()));
            }
            (*ctx).pb = pb;
            // Bit-exact: the same clip is the same bytes (no creation time, random segment
            // UID or library version), as its ETag promises.
            (*ctx).flags |= (ffi::AVFMT_FLAG_CUSTOM_IO | ffi::AVFMT_FLAG_BITEXACT) as c_int;
            let stream = ffi::avformat_new_stream(ctx, ptr::null());
            if stream.is_null() {
                return Err(Error::Encode("out of memory for the clip's stream".into()));
            }
            fill_codec_parameters((*stream).codecpar, &index.codec)?;
            // A QuickTime tag (ProRes' apch, H.264's avc1) carries over between MOV and MP4;
            // Matroska names codecs its own way.
            if format == ClipFormat::Mkv || !index.container.starts_with("mov") {
                (*(*stream).codecpar).codec_tag = 0;
            }
            (*stream).time_base = muxer.time_base;
            (*stream).avg_frame_rate = ffi::AVRational {
                num: rate_num,
                den: rate_den,
            };
            let ret = ffi::avformat_write_header(ctx, ptr::null_mut());
            if ret < 0 {
                return Err(muxer.error("cannot start the clip", ret));
            }
            muxer.header_written = true;
            // The muxer may have changed the stream's time base (Matroska: milliseconds).
            muxer.time_base = (*stream).time_base;
            Ok(muxer)
        }
    }

    pub(super) fn write(&mut self, sample: &Coded, data: &[u8]) -> Result<()> {
        let duration = sample.duration.unwrap_or(self.frame_duration);
        // SAFETY: a packet we allocate, fill and hand to the muxer, which takes its reference.
        unsafe {
            let mut packet = ffi::av_packet_alloc();
            if packet.is_null() {
                return Err(Error::Encode("out of memory for a packet".into()));
            }
            let size = c_int::try_from(data.len())
                .map_err(|_| Error::IndexTooLarge("a sample over 2 GiB".into()))?;
            let ret = ffi::av_new_packet(packet, size);
            if ret < 0 {
                ffi::av_packet_free(&mut packet);
                return Err(Error::Encode("out of memory for a packet".into()));
            }
            ptr::copy_nonoverlapping(data.as_ptr(), (*packet).data, data.len());
            (*packet).pts = sample.pts;
            (*packet).dts = sample.dts;
            (*packet).duration = duration;
            (*packet).stream_index = 0;
            if sample.keyframe {
                (*packet).flags |= ffi::AV_PKT_FLAG_KEY;
            }
            ffi::av_packet_rescale_ts(packet, self.source_time_base, self.time_base);
            let ret = ffi::av_write_frame(self.ctx, packet);
            ffi::av_packet_free(&mut packet);
            if ret < 0 {
                return Err(self.error("cannot write the clip", ret));
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<u64> {
        // SAFETY: the header was written; the trailer completes the file through the sink.
        let ret = unsafe { ffi::av_write_trailer(self.ctx) };
        self.header_written = false;
        if ret < 0 {
            return Err(self.error("cannot finish the clip", ret));
        }
        // SAFETY: pb is our AVIO context; flushing pushes its buffer into the sink.
        unsafe { ffi::avio_flush((*self.ctx).pb) };
        if let Some(error) = self.sink.error.take() {
            return Err(Error::Encode(format!("cannot write the clip: {error}")));
        }
        // Its length is where its end is: the muxer rewrites earlier bytes (MOV's mdat size).
        self.sink
            .out
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::Encode(format!("cannot write the clip: {e}")))
    }

    fn error(&mut self, what: &str, ret: c_int) -> Error {
        match self.sink.error.take() {
            Some(io) => Error::Encode(format!("{what}: {io}")),
            None => Error::Encode(format!("{what}: {}", av_error_string(ret))),
        }
    }
}

impl Drop for Muxer<'_> {
    fn drop(&mut self) {
        // SAFETY: frees what `open` allocated, once; the AVIO buffer may have been reallocated
        // by FFmpeg, so it is freed through the context.
        unsafe {
            if self.header_written {
                ffi::av_write_trailer(self.ctx);
            }
            let mut pb = (*self.ctx).pb;
            if !pb.is_null() {
                ffi::av_freep(&mut (*pb).buffer as *mut *mut u8 as *mut c_void);
                ffi::avio_context_free(&mut pb);
                (*self.ctx).pb = ptr::null_mut();
            }
            ffi::avformat_free_context(self.ctx);
        }
    }
}
