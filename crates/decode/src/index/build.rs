//! Building a movie's index with FFmpeg: cheaply (see `build`), from the MOV/MP4 sample table
//! plus a zero-filled packet scan, or from one packet scan elsewhere; and the codec parameters
//! taken from and written back into FFmpeg's struct.

use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::Arc;

use ffmpeg_next::ffi;

use super::lazy;
use super::model::{
    CodecParams, INDEX_FORMAT_VERSION, MAX_CREATION_TIME_LEN, MovieIndex, Sample,
    check_picture_size, check_samples_inside,
};
use crate::avio::{self, Demuxer, KnownBytes, MOV_DEMUXER};
use crate::decoder::{allowed_decoder, decode_keyframe};
use crate::error::{Error, Result, av_error_string};
use crate::limits::Limits;
use crate::mp4_boxes::{self, FragmentReading, IndexedFragments};
use crate::source::ByteSource;

/// Builds the index of `source`'s best video stream, reading as little as the container allows:
/// for MOV/MP4 only the atom headers and the moov atom.
pub fn build(source: Arc<dyn ByteSource>, limits: &Limits) -> Result<MovieIndex> {
    let is_mov = avio::demuxer_for(&*source)? == MOV_DEMUXER;
    // Other containers larger than `scan_whole_up_to` are indexed from their own structures,
    // within the index budget (2% of the file or 4 MiB); smaller ones by one packet scan.
    let lazy = !is_mov && source.len() > limits.scan_whole_up_to;
    let scannable = source.len() <= limits.max_index_bytes;
    match build_with(Arc::clone(&source), limits, lazy) {
        Ok(Some(index)) => return Ok(index),
        // No index structure to use (a Matroska file without Cues, long-GOP AVI …), or one
        // larger than the budget: the packet scan, within `max_index_bytes`, as for small files
        // — when the whole file fits in it; else the scan could only fail, later.
        Ok(None) | Err(Error::IndexTooLarge(_)) if lazy && scannable => {}
        Ok(None) => {
            return Err(Error::IndexTooLarge(format!(
                "its container has no index to use here, and scanning it would read more than \
                 {} bytes (the configured cap)",
                limits.max_index_bytes
            )));
        }
        Err(e) => return Err(e),
    }
    build_with(source, limits, false)?
        .ok_or_else(|| Error::NotAMovie("the video stream has no frames".into()))
}

/// [`build`], lazily or by a packet scan; `None` when a lazy build finds no index to use.
fn build_with(
    source: Arc<dyn ByteSource>,
    limits: &Limits,
    lazy: bool,
) -> Result<Option<MovieIndex>> {
    let file_size = source.len();
    let validator = source.validator().to_owned();
    let is_mov = avio::demuxer_for(&*source)? == MOV_DEMUXER;
    // A MOV/MP4's atoms are checked before FFmpeg allocates anything for them. A large
    // fragmented one is read by its fragments' index (`mfra`) where it has a usable one.
    let (known, fragments) = if is_mov {
        let reading = if file_size > limits.scan_whole_up_to {
            FragmentReading::Indexed
        } else {
            FragmentReading::Every
        };
        let checked = mp4_boxes::check_movie(&*source, limits, reading)?;
        (checked.known, checked.fragments)
    } else {
        (KnownBytes::default(), None)
    };
    let fetch_cap = if lazy {
        limits.index_budget(file_size)
    } else {
        limits.max_index_bytes
    };
    let timeout = limits.decode_timeout;
    let (mut demuxer, fragments) = match fragments {
        Some(f) => {
            let IndexedFragments {
                track_id,
                frame_duration,
                entries,
                last_samples,
                gate,
                ..
            } = f;
            let demuxer =
                Demuxer::open_fragmented(Arc::clone(&source), known, fetch_cap, timeout, gate)?;
            let counted = (track_id, frame_duration, entries, last_samples);
            (demuxer, Some(counted))
        }
        None if is_mov => (
            Demuxer::open(Arc::clone(&source), known, fetch_cap, timeout)?,
            None,
        ),
        None => (
            Demuxer::open_to_index(Arc::clone(&source), fetch_cap, timeout)?,
            None,
        ),
    };
    let container = demuxer.format_name();
    let ctx = demuxer.ctx();
    // SAFETY: ctx is an open format context owned by `demuxer` for this whole function.
    unsafe {
        // MOV's sample tables carry the codec parameters; elsewhere FFmpeg must look at packets.
        if !is_mov {
            if lazy {
                (*ctx).probesize = lazy::stream_probe_bytes(fetch_cap);
                // MPEG-TS: `lazy` reads the last time from the tail itself (covering B-frames,
                // which FFmpeg's estimate misses), so FFmpeg need not read the tail too.
                (*ctx).skip_estimate_duration_from_pts = 1;
            }
            let ret = ffi::avformat_find_stream_info(ctx, ptr::null_mut());
            if ret < 0 {
                return Err(demuxer.open_error(ret));
            }
        }
        let stream_index = ffi::av_find_best_stream(
            ctx,
            ffi::AVMediaType::AVMEDIA_TYPE_VIDEO,
            -1,
            -1,
            ptr::null_mut(),
            0,
        );
        if stream_index < 0 {
            return Err(Error::NoVideoStream);
        }
        for i in 0..(*ctx).nb_streams as usize {
            let st = *(*ctx).streams.add(i);
            if i as i32 != stream_index {
                (*st).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
        let st = *(*ctx).streams.add(stream_index as usize);
        let par = (*st).codecpar;
        // MOV leaves the picture size of MPEG-4 part 2 (and H.263) to the decoder: let stream
        // analysis decode the first samples to learn it.
        if is_mov && ((*par).width <= 0 || (*par).height <= 0) {
            allowed_decoder((*par).codec_id)?;
            let ret = ffi::avformat_find_stream_info(ctx, ptr::null_mut());
            if ret < 0 {
                return Err(demuxer.open_error(ret));
            }
        }
        let codec = codec_params(par)?;
        check_picture_size(&codec, limits)?;
        let descriptor = ffi::avcodec_descriptor_get((*par).codec_id);
        let intra_only =
            !descriptor.is_null() && ((*descriptor).props & ffi::AV_CODEC_PROP_INTRA_ONLY) != 0;
        let time_base = ((*st).time_base.num, (*st).time_base.den);
        if time_base.0 <= 0 || time_base.1 <= 0 {
            return Err(Error::NotAMovie("the video stream has no time base".into()));
        }
        let mut frame_rate = pick_frame_rate(st);

        let mut timeline = None;
        let mut direct_reads = is_mov;
        // A fragmented MP4 read by its mfra: the first fragment's first sample, its keyframe.
        let mut first_keyframe = None;
        let samples = if let Some((track_id, frame_duration, entries, last_samples)) = fragments {
            if (*st).id != track_id as i32 {
                return Err(Error::NotAMovie(
                    "its mfra lists another track than its video".into(),
                ));
            }
            let per_frame = i32::try_from(frame_duration)
                .map_err(|_| Error::NotAMovie("its samples last too long".into()))?;
            let stream = lazy::Stream {
                st,
                index: stream_index,
                intra_only,
                frame_rate: (time_base.1 / time_base.0.max(1), per_frame),
                fetch_cap,
            };
            let found = lazy::fragmented_mp4(&stream, frame_duration, &entries, last_samples)?;
            first_keyframe = mov_index_entries(st, limits)?
                .first()
                .filter(|first| {
                    u64::from(first.size) <= limits.max_sample_bytes
                        && check_samples_inside(std::slice::from_ref(*first), file_size).is_ok()
                })
                .map(|first| Sample {
                    pts: found.first_pts,
                    keyframe: true,
                    ..*first
                });
            frame_rate = reduced(stream.frame_rate);
            timeline = Some(found);
            direct_reads = false;
            Vec::new()
        } else if is_mov {
            let entries = mov_index_entries(st, limits)?;
            check_samples_inside(&entries, file_size)?;
            if intra_only {
                entries
            } else {
                // Presentation times live only in packets: read them all, but serve every
                // sample's bytes as zeros instead of fetching them.
                demuxer.set_zero_ranges(sample_ranges(&entries));
                let scanned = scan_packets(&mut demuxer, stream_index, limits)?;
                with_scanned_pts(entries, &scanned)?
            }
        } else if lazy {
            let found = lazy::frames(
                &mut demuxer,
                &*source,
                &lazy::Stream {
                    st,
                    index: stream_index,
                    intra_only,
                    frame_rate,
                    fetch_cap,
                },
                limits,
            )?;
            match found {
                lazy::Frames::Samples { samples, direct } => {
                    direct_reads = direct;
                    samples
                }
                lazy::Frames::Timeline(found) => {
                    timeline = Some(found);
                    Vec::new()
                }
                lazy::Frames::Scan => return Ok(None),
            }
        } else {
            scan_packets(&mut demuxer, stream_index, limits)?
        };
        if samples.is_empty() && timeline.is_none() {
            return Err(Error::NotAMovie("the video stream has no frames".into()));
        }
        let duration = match &timeline {
            Some(t) => lazy::timeline_seconds(t, time_base),
            None => container_duration(ctx, st)
                .unwrap_or_else(|| samples_span(&samples, time_base, frame_rate)),
        };
        let index = MovieIndex {
            version: INDEX_FORMAT_VERSION,
            container,
            file_size,
            validator,
            stream_index,
            codec,
            intra_only,
            time_base,
            frame_rate,
            duration,
            samples,
            direct_reads,
            timeline,
            creation_time: creation_time(ctx),
        };
        index.check(limits)?;
        let mut index = index;
        // MOV leaves the pixel format to the decoder (`Movie::open` decodes frame 1 for it).
        if let Some(key) = first_keyframe
            && index.codec.pixel_format.is_empty()
        {
            index.codec.pixel_format = keyframe_pixel_format(&source, &index, &key, limits);
        }
        Ok(Some(index))
    }
}

/// The pixel format the decoder gives a fragmented MP4's first keyframe, which MOV leaves to
/// it (for `BitDepth`): one range read, where `Movie::open` would decode frame 1 through the
/// demuxer, reading the head again and the GOP in growing reads. "" when it does not decode.
fn keyframe_pixel_format(
    source: &Arc<dyn ByteSource>,
    index: &MovieIndex,
    key: &Sample,
    limits: &Limits,
) -> String {
    match decode_keyframe(source, index, key, limits) {
        // SAFETY: the frame is alive; av_get_pix_fmt_name returns a static string or null.
        Ok(frame) => unsafe {
            let format = (*frame.as_ptr()).format;
            if format < 0 {
                return String::new();
            }
            cstr_or_empty(ffi::av_get_pix_fmt_name(std::mem::transmute::<
                i32,
                ffi::AVPixelFormat,
            >(format)))
        },
        Err(error) => {
            tracing::debug!("pixel format unknown: the first keyframe did not decode: {error}");
            String::new()
        }
    }
}

/// The container's `creation_time` tag, when it is a short printable text (it is checked as a
/// date where it is used).
///
/// # Safety
/// `ctx` must be an open format context.
unsafe fn creation_time(ctx: *const ffi::AVFormatContext) -> Option<String> {
    // SAFETY: the key is a NUL-terminated literal; the entry, if any, lives in ctx's metadata.
    let entry =
        unsafe { ffi::av_dict_get((*ctx).metadata, c"creation_time".as_ptr(), ptr::null(), 0) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: dictionary values are NUL-terminated strings owned by the dictionary.
    let value = unsafe { cstr_or_empty((*entry).value) };
    (value.len() <= MAX_CREATION_TIME_LEN
        && !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(value)
}

/// MOV leaves the pixel format to the decoder, and learning it from a decoded frame costs a
/// sample's read (~1 MB for CamHD) on the index's path. ProRes names it in its four-cc, as
/// FFmpeg's decoder reads it: the 4:2:2 flavours decode to 10 bits, 4444 to 12 (with alpha when
/// the frame header says so: the depth, which is what `BitDepth` needs, is the same).
fn prores_pixel_format(codec_tag: u32) -> &'static str {
    match &codec_tag.to_le_bytes() {
        b"apco" | b"apcs" | b"apcn" | b"apch" => "yuv422p10le",
        b"ap4h" | b"ap4x" => "yuv444p12le",
        _ => "",
    }
}

/// # Safety
/// `par` must point to valid codec parameters.
unsafe fn codec_params(par: *const ffi::AVCodecParameters) -> Result<CodecParams> {
    // SAFETY: per the contract; names come from FFmpeg's static tables.
    unsafe {
        let p = &*par;
        let codec = cstr_or_empty(ffi::avcodec_get_name(p.codec_id));
        allowed_decoder(p.codec_id)?;
        let pix_fmt: ffi::AVPixelFormat = std::mem::transmute::<i32, ffi::AVPixelFormat>(p.format);
        let mut pixel_format = cstr_or_empty(ffi::av_get_pix_fmt_name(pix_fmt));
        if pixel_format.is_empty() && p.codec_id == ffi::AVCodecID::AV_CODEC_ID_PRORES {
            pixel_format = prores_pixel_format(p.codec_tag).to_owned();
        }
        let extradata = if p.extradata.is_null() || p.extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
        };
        Ok(CodecParams {
            codec,
            codec_tag: p.codec_tag,
            extradata,
            pixel_format,
            width: p.width,
            height: p.height,
            profile: p.profile,
            level: p.level,
            bits_per_coded_sample: p.bits_per_coded_sample,
            bits_per_raw_sample: p.bits_per_raw_sample,
            sample_aspect_ratio: (p.sample_aspect_ratio.num, p.sample_aspect_ratio.den),
            field_order: field_order_name(p.field_order).to_owned(),
            color_range: cstr_or_empty(ffi::av_color_range_name(p.color_range)),
            color_primaries: cstr_or_empty(ffi::av_color_primaries_name(p.color_primaries)),
            color_trc: cstr_or_empty(ffi::av_color_transfer_name(p.color_trc)),
            color_space: cstr_or_empty(ffi::av_color_space_name(p.color_space)),
            chroma_location: cstr_or_empty(ffi::av_chroma_location_name(p.chroma_location)),
            video_delay: p.video_delay,
        })
    }
}

/// Writes stored parameters back into FFmpeg's struct, for a decoder built without a demuxer.
///
/// # Safety
/// `par` must point to freshly allocated (default) codec parameters.
pub(crate) unsafe fn fill_codec_parameters(
    par: *mut ffi::AVCodecParameters,
    c: &CodecParams,
) -> Result<()> {
    // SAFETY: per the contract. The enum fields are transmuted from values FFmpeg gave us for
    // the same ABI; unknown codec/pixel-format names are refused.
    unsafe {
        let name =
            CString::new(c.codec.as_str()).map_err(|_| Error::BadIndex("codec name".into()))?;
        let descriptor = ffi::avcodec_descriptor_get_by_name(name.as_ptr());
        if descriptor.is_null() {
            return Err(Error::UnsupportedCodec(c.codec.clone()));
        }
        let p = &mut *par;
        p.codec_type = ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        p.codec_id = (*descriptor).id;
        p.codec_tag = c.codec_tag;
        let pix = CString::new(c.pixel_format.as_str())
            .map_err(|_| Error::BadIndex("pixel format".into()))?;
        p.format = if c.pixel_format.is_empty() {
            -1
        } else {
            ffi::av_get_pix_fmt(pix.as_ptr()) as i32
        };
        p.width = c.width;
        p.height = c.height;
        p.profile = c.profile;
        p.level = c.level;
        p.bits_per_coded_sample = c.bits_per_coded_sample;
        p.bits_per_raw_sample = c.bits_per_raw_sample;
        p.sample_aspect_ratio = ffi::AVRational {
            num: c.sample_aspect_ratio.0,
            den: c.sample_aspect_ratio.1,
        };
        p.field_order = field_order_from_name(&c.field_order);
        // An unknown or empty name (another FFmpeg's, or a tampered index) reads as unspecified.
        p.color_range = match by_name(&c.color_range, |n| ffi::av_color_range_from_name(n)) {
            1 => ffi::AVColorRange::AVCOL_RANGE_MPEG,
            2 => ffi::AVColorRange::AVCOL_RANGE_JPEG,
            _ => ffi::AVColorRange::AVCOL_RANGE_UNSPECIFIED,
        };
        p.color_primaries = ffi::AVColorPrimaries::AVCOL_PRI_UNSPECIFIED;
        if let Some(value) = known(by_name(&c.color_primaries, |n| {
            ffi::av_color_primaries_from_name(n)
        })) {
            // SAFETY: a value FFmpeg's own name table returned for this enum.
            p.color_primaries = std::mem::transmute::<u32, ffi::AVColorPrimaries>(value);
        }
        p.color_trc = ffi::AVColorTransferCharacteristic::AVCOL_TRC_UNSPECIFIED;
        if let Some(value) = known(by_name(&c.color_trc, |n| {
            ffi::av_color_transfer_from_name(n)
        })) {
            // SAFETY: as above.
            p.color_trc = std::mem::transmute::<u32, ffi::AVColorTransferCharacteristic>(value);
        }
        p.color_space = ffi::AVColorSpace::AVCOL_SPC_UNSPECIFIED;
        if let Some(value) = known(by_name(&c.color_space, |n| {
            ffi::av_color_space_from_name(n)
        })) {
            // SAFETY: as above.
            p.color_space = std::mem::transmute::<u32, ffi::AVColorSpace>(value);
        }
        p.chroma_location = ffi::AVChromaLocation::AVCHROMA_LOC_UNSPECIFIED;
        if let Some(value) = known(by_name(&c.chroma_location, |n| {
            ffi::av_chroma_location_from_name(n)
        })) {
            // SAFETY: as above.
            p.chroma_location = std::mem::transmute::<u32, ffi::AVChromaLocation>(value);
        }
        p.video_delay = c.video_delay;
        if !c.extradata.is_empty() {
            let size = c.extradata.len();
            let buf = ffi::av_mallocz(size + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
            if buf.is_null() {
                return Err(Error::Decode("out of memory for extradata".into()));
            }
            ptr::copy_nonoverlapping(c.extradata.as_ptr(), buf, size);
            p.extradata = buf;
            p.extradata_size = size as i32;
        }
        Ok(())
    }
}

/// FFmpeg's `*_from_name` result for `name` (negative when unknown or empty).
fn by_name(name: &str, from_name: impl Fn(*const std::ffi::c_char) -> i32) -> i32 {
    match CString::new(name) {
        Ok(name) if !name.as_bytes().is_empty() => from_name(name.as_ptr()),
        _ => -1,
    }
}

fn known(value: i32) -> Option<u32> {
    u32::try_from(value).ok()
}

const FIELD_ORDERS: [(ffi::AVFieldOrder, &str); 6] = [
    (ffi::AVFieldOrder::AV_FIELD_UNKNOWN, "unknown"),
    (ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE, "progressive"),
    (ffi::AVFieldOrder::AV_FIELD_TT, "tt"),
    (ffi::AVFieldOrder::AV_FIELD_BB, "bb"),
    (ffi::AVFieldOrder::AV_FIELD_TB, "tb"),
    (ffi::AVFieldOrder::AV_FIELD_BT, "bt"),
];

/// FFmpeg has no name table for field orders; these are ffprobe's words.
fn field_order_name(order: ffi::AVFieldOrder) -> &'static str {
    FIELD_ORDERS
        .iter()
        .find(|(value, _)| *value == order)
        .map_or("unknown", |(_, name)| name)
}

fn field_order_from_name(name: &str) -> ffi::AVFieldOrder {
    FIELD_ORDERS
        .iter()
        .find(|(_, known)| *known == name)
        .map_or(ffi::AVFieldOrder::AV_FIELD_UNKNOWN, |(value, _)| *value)
}

unsafe fn cstr_or_empty(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: FFmpeg returns NUL-terminated static strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `(num, den)` over their greatest common divisor.
fn reduced((num, den): (i32, i32)) -> (i32, i32) {
    let (mut a, mut b) = (num.max(1), den.max(1));
    while b != 0 {
        (a, b) = (b, a % b);
    }
    (num / a.max(1), den / a.max(1))
}

pub(super) unsafe fn pick_frame_rate(st: *const ffi::AVStream) -> (i32, i32) {
    // SAFETY: st is a valid stream of an open context.
    let (avg, real) = unsafe { ((*st).avg_frame_rate, (*st).r_frame_rate) };
    if avg.num > 0 && avg.den > 0 {
        (avg.num, avg.den)
    } else if real.num > 0 && real.den > 0 {
        (real.num, real.den)
    } else {
        (0, 1)
    }
}

/// The MOV demuxer's sample table for the stream: offsets, sizes, decode times, key flags.
unsafe fn mov_index_entries(st: *mut ffi::AVStream, limits: &Limits) -> Result<Vec<Sample>> {
    // SAFETY: st is a valid stream; entries are read-only views valid until the next demux call.
    unsafe {
        let count = ffi::avformat_index_get_entries_count(st).max(0) as usize;
        if count > limits.max_samples {
            return Err(Error::IndexTooLarge(format!(
                "{count} samples (at most {} allowed)",
                limits.max_samples
            )));
        }
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            let entry = ffi::avformat_index_get_entry(st, i as i32);
            if entry.is_null() {
                break;
            }
            let e = &*entry;
            let flags = e.flags() as i32;
            samples.push(Sample {
                pos: e.pos,
                size: e.size().max(0) as u32,
                pts: e.timestamp,
                dts: e.timestamp,
                keyframe: flags & ffi::AVINDEX_KEYFRAME != 0,
                discard: flags & ffi::AVINDEX_DISCARD_FRAME != 0,
            });
        }
        Ok(samples)
    }
}

fn sample_ranges(samples: &[Sample]) -> Vec<(u64, u64)> {
    samples
        .iter()
        .filter(|s| s.pos >= 0 && s.size > 0)
        .map(|s| (s.pos as u64, s.pos as u64 + u64::from(s.size)))
        .collect()
}

/// Reads every packet of the stream (other streams are discarded by the demuxer) and records it.
fn scan_packets(demuxer: &mut Demuxer, stream_index: i32, limits: &Limits) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    let mut packet = ffmpeg_next::Packet::empty();
    let ctx = demuxer.ctx();
    let mut last_pts = i64::MIN;
    // Packets that came without a presentation time (see `reference_times`).
    let mut timeless = Vec::new();
    loop {
        // SAFETY: ctx is open; the packet is a valid AVPacket we own. av_read_frame overwrites
        // the packet without freeing what it held: unreference it first, or every packet leaks.
        let ret = unsafe {
            let raw = ffmpeg_next::packet::Mut::as_mut_ptr(&mut packet);
            ffi::av_packet_unref(raw);
            ffi::av_read_frame(ctx, raw)
        };
        if ret == ffi::AVERROR_EOF {
            break;
        }
        if ret < 0 {
            if let Some(e) = demuxer.take_io_error() {
                return Err(e);
            }
            if samples.is_empty() {
                return Err(Error::NotAMovie(av_error_string(ret)));
            }
            tracing::debug!(
                "stopping the index scan at a demux error: {}",
                av_error_string(ret)
            );
            break;
        }
        if packet.stream() as i32 != stream_index {
            continue;
        }
        if samples.len() >= limits.max_samples {
            return Err(Error::IndexTooLarge(format!(
                "more than {} samples",
                limits.max_samples
            )));
        }
        let dts = packet.dts().or(packet.pts());
        if packet.pts().is_none() {
            timeless.push(samples.len());
        }
        let pts = packet.pts().or(dts).unwrap_or(last_pts.saturating_add(1));
        last_pts = pts;
        let flags = packet.flags();
        samples.push(Sample {
            pos: packet.position() as i64,
            size: packet.size() as u32,
            pts,
            dts: dts.unwrap_or(pts),
            keyframe: flags.contains(ffmpeg_next::packet::Flags::KEY),
            discard: (flags.bits() & ffi::AV_PKT_FLAG_DISCARD) != 0,
        });
    }
    if timeless.len() == samples.len() {
        // SAFETY: ctx is open and stream_index is one of its streams (checked by the caller).
        let reorders = unsafe {
            let st = *(*ctx).streams.add(stream_index as usize);
            (*(*st).codecpar).video_delay > 0
        };
        if reorders && !samples.is_empty() {
            return Err(Error::UnsupportedCodec(
                "the stream reorders its pictures (B-frames) but its container gives no \
                 presentation times, so frames cannot be numbered as the ffmpeg CLI does"
                    .into(),
            ));
        }
    } else if !timeless.is_empty() {
        reference_times(&mut samples, &timeless);
    }
    Ok(samples)
}

/// AVI carries no presentation times: for a stream with B-frames FFmpeg stamps the B-frames
/// (shown as soon as decoded) with their dts and leaves the reference pictures without one. A
/// decoder that reorders by one picture shows each reference picture when the next reference
/// picture arrives: at that one's dts (the last one, after every other). Without this, frames
/// would be numbered in decode order, unlike the ffmpeg CLI's.
fn reference_times(samples: &mut [Sample], timeless: &[usize]) {
    let end = samples
        .iter()
        .map(|s| s.dts)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    for (k, &i) in timeless.iter().enumerate() {
        let shown_at = timeless
            .get(k + 1)
            .and_then(|&next| samples.get(next))
            .map_or(end, |next| next.dts);
        if let Some(sample) = samples.get_mut(i) {
            sample.pts = shown_at;
        }
    }
}

/// The sample table's places and flags with the scanned packets' presentation times. The flags
/// must come from the table: FFmpeg's parsers judge keyframes from the (zeroed) payload.
fn with_scanned_pts(mut entries: Vec<Sample>, scanned: &[Sample]) -> Result<Vec<Sample>> {
    let matches =
        entries.len() == scanned.len() && entries.iter().zip(scanned).all(|(e, s)| e.pos == s.pos);
    if !matches {
        return Err(Error::NotAMovie(format!(
            "the sample table ({} samples) disagrees with the packets ({})",
            entries.len(),
            scanned.len()
        )));
    }
    for (entry, packet) in entries.iter_mut().zip(scanned) {
        entry.pts = packet.pts;
        entry.dts = packet.dts;
    }
    Ok(entries)
}

unsafe fn container_duration(
    ctx: *const ffi::AVFormatContext,
    st: *const ffi::AVStream,
) -> Option<f64> {
    // SAFETY: valid open context and stream.
    unsafe {
        let tb = (*st).time_base;
        if (*st).duration > 0 && tb.den > 0 {
            return Some((*st).duration as f64 * f64::from(tb.num) / f64::from(tb.den));
        }
        if (*ctx).duration > 0 {
            return Some((*ctx).duration as f64 / f64::from(ffi::AV_TIME_BASE));
        }
        None
    }
}

fn samples_span(samples: &[Sample], time_base: (i32, i32), frame_rate: (i32, i32)) -> f64 {
    let first = samples.iter().map(|s| s.pts).min().unwrap_or(0);
    let last = samples.iter().map(|s| s.pts).max().unwrap_or(0);
    let frame = if frame_rate.0 > 0 {
        f64::from(frame_rate.1) / f64::from(frame_rate.0)
    } else {
        0.0
    };
    (last - first) as f64 * f64::from(time_base.0) / f64::from(time_base.1) + frame
}
