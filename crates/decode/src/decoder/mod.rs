//! Frame N, exactly: pick the keyframe to start from, feed the decoder just the samples it
//! needs (range reads for MOV/MP4, the demuxer otherwise), and catch the frame by its pts.

mod demuxed;
mod direct;
pub(crate) mod keyframe_scan;
mod timeline;
mod ts_seek;
mod walks;
mod warm;
mod warm_demux;
pub(crate) mod warm_pool;

use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::ffi;
use ffmpeg_next::frame;

use crate::error::{Error, Result};
use crate::index::{MovieIndex, Sample, fill_codec_parameters};
use crate::limits::Limits;
use crate::source::ByteSource;
use warm_pool::{Shown, WarmPool, share};

pub(crate) use direct::{decode_keyframe, read_samples};
pub(crate) use timeline::{Positioned, Start, earlier_start, first_seek, one_second, position};

/// Earlier keyframes tried when a start point does not yield the frame (e.g. an open GOP whose
/// recovery point FFmpeg does not honour).
const START_ATTEMPTS: usize = 3;

/// The video decoders FFmpeg may open, by decoder name (FFmpeg's `codec_whitelist`, on the
/// format context for stream analysis and on every decoder context we open):
/// the codecs of cameras, editing and archives (ProRes, H.264, HEVC, MPEG-2, MPEG-4 part 2,
/// MJPEG, DNxHD/HR), of the web (VP8, VP9, and AV1 through libdav1d: FFmpeg 5.1's own `av1`
/// decoder only drives hardware), lossless FFV1, and uncompressed or lossless intermediates
/// (raw video, 10-bit v210/v410/r210, QuickTime Animation, PNG). Anything else — hundreds of
/// decoders for old and exotic formats — is refused as an unsupported codec.
pub(crate) const DECODER_WHITELIST: &str = "prores,h264,hevc,mpeg2video,mpeg4,mjpeg,dnxhd,\
    vp8,vp9,libdav1d,ffv1,rawvideo,v210,v410,r210,qtrle,png";

/// The decoder FFmpeg would use for `id`, if it is on [`DECODER_WHITELIST`].
pub(crate) fn allowed_decoder(id: ffi::AVCodecID) -> Result<*const ffi::AVCodec> {
    // SAFETY: lookups in FFmpeg's static codec tables; names are static C strings.
    unsafe {
        let codec = ffi::avcodec_find_decoder(id);
        let name = |p: *const std::ffi::c_char| {
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        if codec.is_null() {
            return Err(Error::UnsupportedCodec(name(ffi::avcodec_get_name(id))));
        }
        let decoder = name((*codec).name);
        if !DECODER_WHITELIST
            .split(',')
            .any(|allowed| allowed.trim() == decoder)
        {
            return Err(Error::UnsupportedCodec(format!(
                "{} (decoder {decoder} is not enabled here)",
                name(ffi::avcodec_get_name(id))
            )));
        }
        Ok(codec)
    }
}

/// A decoded picture in the codec's own pixel format, with its colour description.
pub struct DecodedFrame {
    pub(crate) frame: frame::Video,
    pub(crate) path: DecodePath,
}

/// How a frame was decoded: from its keyframe, by continuing a kept decoder, or as a picture a
/// kept decoder had produced already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodePath {
    Cold,
    Continued,
    Kept,
}

impl DecodePath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Continued => "continued",
            Self::Kept => "kept",
        }
    }
}

impl DecodedFrame {
    pub fn path(&self) -> DecodePath {
        self.path
    }
    pub fn width(&self) -> u32 {
        self.frame.width()
    }
    pub fn height(&self) -> u32 {
        self.frame.height()
    }
}

/// One frame request: the target sample (decode order) and its pts, under the caps.
#[derive(Clone, Copy)]
pub(super) struct Attempt<'a> {
    source: &'a Arc<dyn ByteSource>,
    index: &'a MovieIndex,
    target: usize,
    target_pts: i64,
    limits: &'a Limits,
    deadline: Instant,
}

/// A movie's share of the process's warm decoder states: the pool and the movie's id in it.
#[derive(Clone, Copy)]
pub(crate) struct WarmMovie<'a> {
    pub(crate) pool: &'a WarmPool,
    pub(crate) movie: u64,
}

/// Decodes the frame whose presentation-order position is `order_pos` (0-based): long-GOP
/// movies through the warm pool when there is one (range-read samples or a kept demuxer), else
/// cold from its keyframe.
pub(crate) fn decode_frame(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    presentation: &[u32],
    order_pos: usize,
    limits: &Limits,
    warm: Option<WarmMovie<'_>>,
) -> Result<DecodedFrame> {
    let warm = warm.filter(|warm| warm.pool.enabled() && !index.intra_only);
    if let Some(timeline) = &index.timeline {
        if let Some(warm) = warm
            && let Some((frame, path)) =
                warm_demux::timeline_frame(source, index, timeline, order_pos, limits, warm)?
        {
            return Ok(DecodedFrame { frame, path });
        }
        let frame = timeline::decode(source, index, timeline, order_pos, limits)?;
        return Ok(DecodedFrame {
            frame,
            path: DecodePath::Cold,
        });
    }
    let out_of_range = || Error::FrameOutOfRange {
        frame: order_pos as u64 + 1,
        count: presentation.len() as u64,
    };
    let target = *presentation.get(order_pos).ok_or_else(out_of_range)? as usize;
    let target_pts = index.samples.get(target).ok_or_else(out_of_range)?.pts;
    let deadline = crate::deadline::or_from_now(limits.decode_timeout);
    let attempt = Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    };
    if let Some(warm) = warm {
        let found = if index.direct_reads {
            warm::decode(&attempt, warm.pool, warm.movie, order_pos)?
        } else {
            warm_demux::sample_frame(&attempt, warm, order_pos)?
        };
        if let Some((frame, path)) = found {
            return Ok(DecodedFrame { frame, path });
        }
    }
    let mut start = target;
    for _ in 0..START_ATTEMPTS {
        start = keyframe_before(&index.samples, start, target_pts);
        if target - start + 1 > limits.max_decode_packets {
            return Err(Error::Decode(format!(
                "frame needs {} packets decoded from its keyframe (at most {} allowed)",
                target - start + 1,
                limits.max_decode_packets
            )));
        }
        let found = if index.direct_reads {
            direct::decode(&attempt, start)?
        } else {
            demuxed::decode(&attempt, start)?
        };
        if let Some(frame) = found {
            return Ok(DecodedFrame {
                frame,
                path: DecodePath::Cold,
            });
        }
        if start == 0 {
            break;
        }
        start -= 1;
    }
    Err(Error::Decode(format!(
        "the decoder did not produce the frame at pts {target_pts}"
    )))
}

/// The last keyframe at or before `from` (decode order) shown no later than the target, so
/// the target is neither before it nor one of its leading pictures.
fn keyframe_before(samples: &[Sample], from: usize, target_pts: i64) -> usize {
    samples
        .get(..=from)
        .unwrap_or_default()
        .iter()
        .rposition(|s| s.keyframe && s.pts <= target_pts)
        .unwrap_or(0)
}

fn open_decoder(index: &MovieIndex, limits: &Limits) -> Result<ffmpeg_next::decoder::Video> {
    let mut params = ffmpeg_next::codec::Parameters::new();
    // SAFETY: params owns a freshly allocated AVCodecParameters.
    unsafe { fill_codec_parameters(params.as_mut_ptr(), &index.codec)? };
    // SAFETY: params holds the codec id just filled in.
    allowed_decoder(unsafe { (*params.as_ptr()).codec_id })?;
    let mut context = ffmpeg_next::codec::Context::from_parameters(params)
        .map_err(|e| Error::Decode(e.to_string()))?;
    let whitelist = std::ffi::CString::new(DECODER_WHITELIST).unwrap_or_default();
    // SAFETY: plain field writes on a context not yet opened; the whitelist is FFmpeg-allocated
    // and freed with the context.
    unsafe {
        let ctx = context.as_mut_ptr();
        (*ctx).codec_whitelist = ffi::av_strdup(whitelist.as_ptr());
        if (*ctx).codec_whitelist.is_null() {
            return Err(Error::Decode(
                "out of memory for the decoder whitelist".into(),
            ));
        }
        (*ctx).max_pixels = i64::try_from(limits.max_source_pixels).unwrap_or(i64::MAX);
        (*ctx).pkt_timebase = ffi::AVRational {
            num: index.time_base.0,
            den: index.time_base.1,
        };
        (*ctx).thread_count = limits.decoder_threads.clamp(1, 16) as i32;
        (*ctx).thread_type = if index.intra_only {
            ffi::FF_THREAD_SLICE
        } else {
            ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE
        };
    }
    context
        .decoder()
        .video()
        .map_err(|e| Error::UnsupportedCodec(format!("{}: {e}", index.codec.codec)))
}

/// Feeds packets and watches the output for `target_pts`; when warm, also remembers what it
/// showed (see `warm_pool`).
pub(crate) struct FrameCatcher {
    decoder: ffmpeg_next::decoder::Video,
    target_pts: i64,
    /// How far the target picture's pts may be from `target_pts` (half a frame on a timeline).
    tolerance: i64,
    found: Option<frame::Video>,
    last_error: Option<String>,
    max_pixels: u64,
    pub(crate) shown: Option<Shown>,
}

impl FrameCatcher {
    pub(super) fn feed(&mut self, packet: &ffmpeg_next::Packet) -> Result<()> {
        loop {
            match self.decoder.send_packet(packet) {
                Ok(()) => return self.drain(),
                Err(ffmpeg_next::Error::Other { errno }) if errno == ffi::EAGAIN => self.drain()?,
                Err(e) => {
                    // Corrupt non-target packets are survivable, as for the ffmpeg CLI.
                    self.last_error = Some(e.to_string());
                    return Ok(());
                }
            }
            if self.found.is_some() && self.shown.is_none() {
                return Ok(());
            }
        }
    }

    pub(super) fn finish(&mut self) -> Result<()> {
        if self.found.is_none() && self.decoder.send_eof().is_ok() {
            self.drain()?;
        }
        Ok(())
    }

    /// Packets the decoder may take after a picture's own before it returns that picture
    /// without a flush: its reordering depth (`has_b_frames`, which H.264 may raise while
    /// decoding) plus, with frame threads, one packet per further thread.
    pub(super) fn delay(&self) -> usize {
        // SAFETY: the decoder's context is open and owned by `self.decoder`; plain field reads.
        let (reorder, threads, frame_threads) = unsafe {
            let ctx = self.decoder.as_ptr();
            (
                (*ctx).has_b_frames,
                (*ctx).thread_count,
                (*ctx).active_thread_type & ffi::FF_THREAD_FRAME != 0,
            )
        };
        let threads = if frame_threads { threads.max(1) - 1 } else { 0 };
        usize::try_from(reorder.max(0) + threads).unwrap_or(0)
    }

    /// Looks for `target_pts` from now on.
    pub(super) fn aim(&mut self, target_pts: i64) {
        self.target_pts = target_pts;
        self.found = None;
    }

    fn drain(&mut self) -> Result<()> {
        let mut picture = frame::Video::empty();
        // A cold catcher stops at its picture; a warm one takes every picture ready, to keep.
        while (self.found.is_none() || self.shown.is_some())
            && self.decoder.receive_frame(&mut picture).is_ok()
        {
            let Some(pts) = picture.pts().or(picture.timestamp()) else {
                continue;
            };
            let is_target = pts.abs_diff(self.target_pts) <= self.tolerance.unsigned_abs();
            if is_target || self.shown.is_some() {
                let pixels = u64::from(picture.width()) * u64::from(picture.height());
                if pixels == 0 || pixels > self.max_pixels {
                    return Err(Error::Decode(format!(
                        "the decoder produced a {}×{} picture",
                        picture.width(),
                        picture.height()
                    )));
                }
            }
            if let Some(shown) = &mut self.shown {
                shown.push(pts, &picture)?;
                if is_target {
                    self.found = Some(share(&picture)?);
                }
            } else if is_target {
                self.found = Some(std::mem::replace(&mut picture, frame::Video::empty()));
            }
        }
        Ok(())
    }
}

pub(super) fn make_catcher(
    index: &MovieIndex,
    target_pts: i64,
    limits: &Limits,
) -> Result<FrameCatcher> {
    Ok(FrameCatcher {
        decoder: open_decoder(index, limits)?,
        target_pts,
        tolerance: 0,
        found: None,
        last_error: None,
        max_pixels: limits.max_source_pixels,
        shown: None,
    })
}

pub(crate) fn check_deadline(deadline: Instant, limits: &Limits) -> Result<()> {
    if Instant::now() > deadline {
        Err(Error::DecodeTimeout(limits.decode_timeout))
    } else {
        Ok(())
    }
}

pub(super) fn packet_for(sample: &Sample, data: &[u8]) -> ffmpeg_next::Packet {
    let mut packet = ffmpeg_next::Packet::copy(data);
    packet.set_pts(Some(sample.pts));
    packet.set_dts(Some(sample.dts));
    let mut flags = 0;
    if sample.keyframe {
        flags |= ffi::AV_PKT_FLAG_KEY;
    }
    if sample.discard {
        flags |= ffi::AV_PKT_FLAG_DISCARD;
    }
    packet.set_flags(ffmpeg_next::packet::Flags::from_bits_truncate(flags));
    packet
}

pub(super) fn finish_attempt(catcher: FrameCatcher) -> Result<Option<frame::Video>> {
    if catcher.found.is_none()
        && let Some(e) = &catcher.last_error
    {
        tracing::debug!("frame not produced; last decoder error: {e}");
    }
    Ok(catcher.found)
}

impl DecodedFrame {
    pub(crate) fn frame_ptr(&self) -> *const ffi::AVFrame {
        // SAFETY: the pointer stays valid while `self` lives; callers only read through it.
        unsafe { self.frame.as_ptr() }
    }
}
