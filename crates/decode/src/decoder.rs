//! Frame N, exactly: pick the keyframe to start from, feed the decoder just the samples it
//! needs (range reads for MOV/MP4, the demuxer otherwise), and catch the frame by its pts.

use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::ffi;
use ffmpeg_next::frame;

use crate::avio::{Demuxer, KnownBytes};
use crate::error::{Error, Result, av_error_string};
use crate::index::{MovieIndex, Sample, fill_codec_parameters};
use crate::limits::Limits;
use crate::source::ByteSource;

/// Two samples closer than this are fetched in one read.
const MERGE_GAP: u64 = 64 * 1024;
/// One read never spans more than this.
const MAX_READ_SPAN: u64 = 32 * 1024 * 1024;
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
}

impl DecodedFrame {
    pub fn width(&self) -> u32 {
        self.frame.width()
    }
    pub fn height(&self) -> u32 {
        self.frame.height()
    }
}

/// One frame request: the target sample (decode order) and its pts, under the caps.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    source: &'a Arc<dyn ByteSource>,
    index: &'a MovieIndex,
    target: usize,
    target_pts: i64,
    limits: &'a Limits,
    deadline: Instant,
}

/// Decodes the frame whose presentation-order position is `order_pos` (0-based).
pub fn decode_frame(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    presentation: &[u32],
    order_pos: usize,
    limits: &Limits,
) -> Result<DecodedFrame> {
    let out_of_range = || Error::FrameOutOfRange {
        frame: order_pos as u64 + 1,
        count: presentation.len() as u64,
    };
    let target = *presentation.get(order_pos).ok_or_else(out_of_range)? as usize;
    let target_pts = index.samples.get(target).ok_or_else(out_of_range)?.pts;
    let deadline = Instant::now() + limits.decode_timeout;
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
        let attempt = Attempt {
            source,
            index,
            target,
            target_pts,
            limits,
            deadline,
        };
        let found = if index.direct_reads {
            decode_direct(&attempt, start)?
        } else {
            decode_demuxed(&attempt, start)?
        };
        if let Some(frame) = found {
            return Ok(DecodedFrame { frame });
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

/// Feeds packets and watches the output for `target_pts`.
struct FrameCatcher {
    decoder: ffmpeg_next::decoder::Video,
    target_pts: i64,
    found: Option<frame::Video>,
    last_error: Option<String>,
    max_pixels: u64,
}

impl FrameCatcher {
    fn feed(&mut self, packet: &ffmpeg_next::Packet) -> Result<()> {
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
            if self.found.is_some() {
                return Ok(());
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if self.found.is_none() && self.decoder.send_eof().is_ok() {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        let mut picture = frame::Video::empty();
        while self.found.is_none() && self.decoder.receive_frame(&mut picture).is_ok() {
            let pts = picture.pts().or(picture.timestamp());
            if pts == Some(self.target_pts) {
                let pixels = u64::from(picture.width()) * u64::from(picture.height());
                if pixels == 0 || pixels > self.max_pixels {
                    return Err(Error::Decode(format!(
                        "the decoder produced a {}×{} picture",
                        picture.width(),
                        picture.height()
                    )));
                }
                self.found = Some(std::mem::replace(&mut picture, frame::Video::empty()));
            }
        }
        Ok(())
    }
}

fn make_catcher(index: &MovieIndex, target_pts: i64, limits: &Limits) -> Result<FrameCatcher> {
    Ok(FrameCatcher {
        decoder: open_decoder(index, limits)?,
        target_pts,
        found: None,
        last_error: None,
        max_pixels: limits.max_source_pixels,
    })
}

fn check_deadline(deadline: Instant, limits: &Limits) -> Result<()> {
    if Instant::now() > deadline {
        Err(Error::DecodeTimeout(limits.decode_timeout))
    } else {
        Ok(())
    }
}

fn packet_for(sample: &Sample, data: &[u8]) -> ffmpeg_next::Packet {
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

/// MOV/MP4: read samples `start..=target` by byte range (merging neighbours) and decode them.
fn decode_direct(attempt: &Attempt<'_>, start: usize) -> Result<Option<frame::Video>> {
    let Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    } = *attempt;
    let mut catcher = make_catcher(index, target_pts, limits)?;
    let bad_index = || Error::BadIndex("a sample lies outside the file".into());
    let samples = index.samples.get(start..=target).ok_or_else(bad_index)?;
    for span in read_spans(samples) {
        check_deadline(deadline, limits)?;
        let run = samples.get(span).unwrap_or_default();
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        let offset = u64::try_from(first.pos).map_err(|_| bad_index())?;
        let len = u64::try_from(last.pos)
            .ok()
            .and_then(|pos| pos.checked_add(u64::from(last.size)))
            .and_then(|end| end.checked_sub(offset))
            .and_then(|len| usize::try_from(len).ok())
            .ok_or_else(bad_index)?;
        let bytes = source.read_at(offset, len)?;
        if bytes.len() < len {
            return Err(Error::Truncated(format!(
                "the file ends inside the sample at byte {offset}"
            )));
        }
        for sample in run {
            let data = u64::try_from(sample.pos)
                .ok()
                .and_then(|pos| usize::try_from(pos.checked_sub(offset)?).ok())
                .and_then(|from| bytes.get(from..from.checked_add(sample.size as usize)?))
                .ok_or_else(bad_index)?;
            catcher.feed(&packet_for(sample, data))?;
        }
    }
    catcher.finish()?;
    finish_attempt(catcher)
}

fn finish_attempt(catcher: FrameCatcher) -> Result<Option<frame::Video>> {
    if catcher.found.is_none()
        && let Some(e) = &catcher.last_error
    {
        tracing::debug!("frame not produced; last decoder error: {e}");
    }
    Ok(catcher.found)
}

/// Groups consecutive samples into ranges of `samples` read with one request each.
fn read_spans(samples: &[Sample]) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut begin = 0;
    let pos = |s: &Sample| u64::try_from(s.pos).unwrap_or(0);
    let end = |s: &Sample| pos(s).saturating_add(u64::from(s.size));
    for i in 1..=samples.len() {
        let split = match (samples.get(i - 1), samples.get(i), samples.get(begin)) {
            (Some(prev), Some(next), Some(first)) => {
                pos(next) < end(prev)
                    || pos(next) - end(prev) > MERGE_GAP
                    || end(next).saturating_sub(pos(first)) > MAX_READ_SPAN
            }
            _ => true,
        };
        if split {
            spans.push(begin..i);
            begin = i;
        }
    }
    spans
}

/// Other containers: seek the demuxer to the start keyframe, then feed its packets through the
/// target. Packets are matched to index samples by byte position (or dts when unknown).
fn decode_demuxed(attempt: &Attempt<'_>, start: usize) -> Result<Option<frame::Video>> {
    let Attempt {
        source,
        index,
        target,
        target_pts,
        limits,
        deadline,
    } = *attempt;
    let stream_index = index.stream_index;
    let mut demuxer = open_stream(source, index, limits)?;
    let ctx = demuxer.ctx();
    let wanted = index
        .samples
        .get(start..=target)
        .ok_or_else(|| Error::BadIndex("a frame outside the index".into()))?;
    let Some(&key_sample) = wanted.first() else {
        return Ok(None);
    };
    let seek_ts = key_sample.pts.min(key_sample.dts);
    // SAFETY: as above.
    let sought =
        unsafe { ffi::avformat_seek_file(ctx, stream_index, i64::MIN, seek_ts, seek_ts, 0) };
    if sought < 0 {
        demuxer = open_stream(source, index, limits)?;
    }
    let mut catcher = make_catcher(index, target_pts, limits)?;
    let mut next = 0; // position in `wanted` of the next packet to feed
    let mut rewound = sought < 0 || start == 0;
    let mut packet = ffmpeg_next::Packet::empty();
    let mut read = 0usize;
    while next < wanted.len() {
        check_deadline(deadline, limits)?;
        // SAFETY: as above. av_read_frame overwrites the packet without freeing what it held:
        // unreference it first, or every packet read leaks its data.
        let ret = unsafe {
            let raw = ffmpeg_next::packet::Mut::as_mut_ptr(&mut packet);
            ffi::av_packet_unref(raw);
            ffi::av_read_frame(demuxer.ctx(), raw)
        };
        if ret < 0 {
            if let Some(e) = demuxer.take_io_error() {
                return Err(e);
            }
            if ret == ffi::AVERROR_EOF && next == 0 && !rewound {
                // The seek overshot the keyframe: read from the start instead.
                demuxer = open_stream(source, index, limits)?;
                rewound = true;
                continue;
            }
            return Err(Error::Decode(format!(
                "demuxing stopped early: {}",
                av_error_string(ret)
            )));
        }
        if packet.stream() as i32 != stream_index {
            continue;
        }
        read += 1;
        if read
            > limits
                .max_decode_packets
                .saturating_mul(4)
                .max(wanted.len() * 2)
            && next == 0
            && !rewound
        {
            demuxer = open_stream(source, index, limits)?;
            rewound = true;
            continue;
        }
        let is = |s: &Sample| {
            if s.pos >= 0 && packet.position() >= 0 {
                s.pos == packet.position() as i64
            } else {
                Some(s.dts) == packet.dts()
            }
        };
        let Some(expected) = wanted.get(next) else {
            break;
        };
        if next == 0 {
            if !is(expected) {
                let past = packet.dts().is_some_and(|d| d > expected.dts)
                    && packet.position() as i64 > expected.pos;
                if past && !rewound {
                    demuxer = open_stream(source, index, limits)?;
                    rewound = true;
                }
                continue;
            }
        } else if !is(expected) {
            return Err(Error::Source(crate::SourceError::new(
                crate::SourceErrorKind::Changed,
                "the movie's packets differ from its index",
            )));
        }
        let mut fed = packet_for(expected, packet.data().unwrap_or(&[]));
        fed.set_position(packet.position());
        catcher.feed(&fed)?;
        next += 1;
    }
    catcher.finish()?;
    finish_attempt(catcher)
}

/// A fresh demuxer at the start of the movie, reading only the indexed video stream.
fn open_stream(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    limits: &Limits,
) -> Result<Demuxer> {
    let mut demuxer = Demuxer::open(
        Arc::clone(source),
        KnownBytes::default(),
        u64::MAX,
        limits.decode_timeout,
    )?;
    let ctx = demuxer.ctx();
    let stream_index = index.stream_index;
    // SAFETY: ctx is open and owned by `demuxer`; stream_index is checked against nb_streams.
    unsafe {
        if stream_index < 0 || stream_index as u32 >= (*ctx).nb_streams {
            return Err(Error::Source(crate::SourceError::new(
                crate::SourceErrorKind::Changed,
                "the movie's streams differ from its index",
            )));
        }
        for i in 0..(*ctx).nb_streams as usize {
            if i as i32 != stream_index {
                (**(*ctx).streams.add(i)).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    Ok(demuxer)
}

impl DecodedFrame {
    pub(crate) fn frame_ptr(&self) -> *const ffi::AVFrame {
        // SAFETY: the pointer stays valid while `self` lives; callers only read through it.
        unsafe { self.frame.as_ptr() }
    }
}
