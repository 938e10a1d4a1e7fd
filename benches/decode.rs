//! Decode and encode costs on real media (scripts/fixtures): a ProRes HQ 1080p frame (to RGB, and
//! to a JPEG straight from its YUV planes), a frame in the middle of a 250-frame H.264 GOP, and a
//! 1080p frame encoded from RGB to every output format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use lazycache_decode::{
    ByteSource, FileSource, Format, Limits, Movie, PixelLayout, RenderOptions, encode, render,
};
use lazycache_testkit::fixtures;

fn movie(name: &str) -> Movie {
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(fixtures::path(name)).unwrap());
    Movie::open(source, Limits::default()).unwrap()
}

fn decode(c: &mut Criterion) {
    let prores = movie("prores_hq_1080p.mov");
    let mut group = c.benchmark_group("decode");
    group.sample_size(30);
    group.bench_function("prores_hq_1080p_frame_to_rgb", |b| {
        b.iter(|| {
            let frame = prores.decode(black_box(40)).unwrap();
            render(&frame, &RenderOptions::default(), PixelLayout::Rgb24, 2).unwrap()
        })
    });
    group.bench_function("prores_hq_1080p_decode_only", |b| {
        b.iter(|| prores.decode(black_box(40)).unwrap())
    });
    // What a cold `/frame/40.jpg` costs once the bytes are in: the decode, then the JPEG made
    // straight from the YUV planes (two strips at once), without the RGB round trip.
    group.bench_function("prores_hq_1080p_frame_as_jpeg_q75", |b| {
        let options = RenderOptions::default();
        b.iter(|| {
            prores
                .frame(black_box(40), &options, Format::Jpeg, Some(75))
                .unwrap()
        })
    });
    let long_gop = movie("h264_gop250_1080p.mp4");
    group.sample_size(10);
    group.bench_function("h264_1080p_frame_125_of_250_frame_gop_to_rgb", |b| {
        b.iter(|| {
            let frame = long_gop.decode(black_box(125)).unwrap();
            render(&frame, &RenderOptions::default(), PixelLayout::Rgb24, 2).unwrap()
        })
    });
    group.finish();
}

fn encode_formats(c: &mut Criterion) {
    let prores = movie("prores_hq_1080p.mov");
    let frame = prores.decode(40).unwrap();
    let mut group = c.benchmark_group("encode_1080p");
    group.sample_size(20);
    for format in [
        Format::Jpeg,
        Format::Png,
        Format::Bmp,
        Format::Webp,
        Format::Rgba,
        Format::Npy,
    ] {
        let options = RenderOptions::default();
        let image = render(&frame, &options, format.layout(&options).unwrap(), 2).unwrap();
        group.bench_function(format.extension(), |b| {
            b.iter(|| encode(black_box(&image), format, None).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode_formats);
criterion_main!(benches);
