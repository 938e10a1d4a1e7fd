//! The many-frames use case (SPEC §3, Many frames): `frames/<A-B | A-B:S | N,M,K>.<npy|zip>`.
//! Validated before any frame is decoded (selection, frame count, output size, the 2 GiB bound,
//! raw output); then frames are fetched one after another in the order named, each through the
//! single-frame path (same cache key, same decode slots, so a run in one GOP continues one warm
//! decoder) by a producer task, and handed to the caller as chunks through a small bounded
//! channel: a few frames in flight, never the whole answer.
//!
//! Once the first chunk is out, a failure cannot change the answer's status: the producer logs
//! it and ends the stream early with the error (the HTTP body is cut short; the CLI fails).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lazycache_decode::render::output_size;
use lazycache_decode::{Channels, Depth, Format, SourceError, SourceErrorKind};
use lazycache_origin::{Mirror, RelPath};
use tokio::sync::mpsc;

use crate::error::{ServiceError, ServiceResult};
use crate::keys::{MovieVersion, frame_key, frames_key};
use crate::npy;
use crate::request::{FrameOutput, FrameRequest, FrameSelector, OutputParams, Seek};
use crate::selection::FrameSelection;
use crate::service::{Conditional, Service, retry_if_changed};
use crate::stored_zip::StoredZip;

/// Largest answer, estimated from the output size before decoding: frames × pixels × bytes per
/// pixel (for compressed formats an upper estimate, which is what lets it be checked up front).
pub const MAX_OUTPUT_BYTES: u64 = 2 << 30;
/// Chunks waiting between the producer and the client: two frames with their zip headers.
const CHUNKS_IN_FLIGHT: usize = 4;
/// How long a chunk may wait for a client that reads nothing before the answer is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// How many frames are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// One NumPy array (n, height, width[, channels]).
    Npy,
    /// A stored zip of `frame-<N>.<fmt>`.
    Zip,
}

impl Container {
    fn from_extension(ext: &str) -> ServiceResult<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "npy" => Ok(Self::Npy),
            "zip" => Ok(Self::Zip),
            other => Err(ServiceError::BadRequest(format!(
                "many frames come as .npy or .zip, not .{other}"
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Npy => "npy",
            Self::Zip => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Npy => "application/x-npy",
            Self::Zip => "application/zip",
        }
    }
}

/// Many frames of one movie in one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FramesRequest {
    pub selection: FrameSelection,
    pub container: Container,
    /// Each frame's own request: `.npy` for an array, `?format=` (png by default) in a zip,
    /// with every frame option.
    pub output: FrameOutput,
}

impl FramesRequest {
    /// `selection` (`A-B`, `A-B:S`, `N,M,K`), the container's extension (`npy`, `zip`), the
    /// zip's `format` (`png`, `jpg`, `bmp`, `webp`, `npy`; png when none) and the frame options.
    pub fn parse(
        selection: &str,
        container: &str,
        format: Option<&str>,
        params: &OutputParams<'_>,
    ) -> ServiceResult<Self> {
        let container = Container::from_extension(container)?;
        let selection = FrameSelection::parse(selection)?;
        let format = format.map(str::trim).filter(|f| !f.is_empty());
        let format = match (container, format) {
            (Container::Npy, None | Some("npy")) => Format::Npy,
            (Container::Npy, Some(other)) => {
                return Err(ServiceError::BadRequest(format!(
                    "format={other} is for .zip answers; a .npy answer is one array"
                )));
            }
            (Container::Zip, None) => Format::Png,
            (Container::Zip, Some(text)) => match Format::from_extension(Some(text)) {
                Ok(Format::Rgba) | Err(_) => {
                    return Err(ServiceError::BadRequest(format!(
                        "format must be png, jpg, bmp, webp or npy, not {text:?}"
                    )));
                }
                Ok(format) => format,
            },
        };
        Ok(Self {
            selection,
            container,
            output: FrameOutput::parse(format, params)?,
        })
    }

    /// `SELECTION.npy` / `SELECTION.zip` as one path segment.
    pub fn parse_segment(
        segment: &str,
        format: Option<&str>,
        params: &OutputParams<'_>,
    ) -> ServiceResult<Self> {
        let (selection, container) = segment.rsplit_once('.').ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "name the frames as SELECTION.npy or SELECTION.zip, not {segment:?}"
            ))
        })?;
        Self::parse(selection, container, format, params)
    }
}

/// The NumPy element of one frame's pixels under `output`: its dtype and its channels (none
/// for a picture without a channel axis). The one place that knows how output options change
/// the samples — `?depth=16` (`<u2`) and `?channels=gray` (no channel axis) belong here.
fn npy_element(output: &FrameOutput) -> (&'static str, Option<u64>) {
    let descr = match output.render.depth {
        Depth::Eight => "|u1",
        Depth::Sixteen => "<u2",
    };
    let channels = match output.render.channels {
        Channels::Rgb => Some(3),
        Channels::Gray => None,
    };
    (descr, channels)
}

/// Many frames, validated and ready to stream.
pub struct FramesAnswer {
    pub content_type: &'static str,
    /// The answer's length when known before the frames are (a `.npy` array).
    pub content_length: Option<u64>,
    /// Changes whenever the bytes would (movie version, selection, every output option).
    pub version_tag: String,
    pub frame_count: usize,
    producer: Producer,
}

impl FramesAnswer {
    /// Starts fetching the frames on the service's runtime; the chunks come in order. Dropping
    /// the [`FrameChunks`] stops the work after the frame in progress.
    pub fn start(self) -> FrameChunks {
        let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let io = self.producer.service.io().clone();
        io.spawn(self.producer.run(sender));
        FrameChunks { receiver }
    }
}

/// The chunks of a started [`FramesAnswer`]; an `Err` is the last item.
pub struct FrameChunks {
    receiver: mpsc::Receiver<ServiceResult<Bytes>>,
}

impl FrameChunks {
    pub async fn next(&mut self) -> Option<ServiceResult<Bytes>> {
        self.receiver.recv().await
    }
}

enum Packing {
    Npy {
        header: Vec<u8>,
        descr: &'static str,
        frame_shape: Vec<u64>,
    },
    Zip(StoredZip),
}

/// Why the producer stopped before the end.
enum Stop {
    Failed(ServiceError),
    /// The client went away (or read nothing for [`SEND_TIMEOUT`]).
    Gone,
}

impl From<ServiceError> for Stop {
    fn from(error: ServiceError) -> Self {
        Self::Failed(error)
    }
}

struct Producer {
    service: Service,
    mirror: Arc<Mirror>,
    path: RelPath,
    version: MovieVersion,
    frames: Vec<u64>,
    output: FrameOutput,
    packing: Packing,
}

impl Producer {
    async fn run(mut self, sender: mpsc::Sender<ServiceResult<Bytes>>) {
        match self.produce(&sender).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(error)) => {
                tracing::warn!(
                    path = %self.path,
                    error = %error,
                    "many frames: the answer ends early (its status was sent already)"
                );
                let _ = sender.send_timeout(Err(error), SEND_TIMEOUT).await;
            }
        }
    }

    async fn produce(&mut self, sender: &mpsc::Sender<ServiceResult<Bytes>>) -> Result<(), Stop> {
        if let Packing::Npy { header, .. } = &mut self.packing {
            send(sender, Bytes::from(std::mem::take(header))).await?;
        }
        for index in 0..self.frames.len() {
            let number = self.frames[index];
            let bytes = self.frame(number).await?;
            match &mut self.packing {
                Packing::Npy {
                    descr, frame_shape, ..
                } => send(sender, npy::pixels_of(&bytes, descr, frame_shape)?).await?,
                Packing::Zip(zip) => {
                    let name = format!("frame-{number}.{}", self.output.format.extension());
                    let header = zip.entry(&name, &bytes);
                    send(sender, Bytes::from(header)).await?;
                    send(sender, bytes).await?;
                }
            }
        }
        if let Packing::Zip(zip) =
            std::mem::replace(&mut self.packing, Packing::Zip(StoredZip::new()))
        {
            send(sender, zip.finish()).await?;
        }
        Ok(())
    }

    /// Frame `number` through the single-frame path, of the version the answer began with.
    async fn frame(&self, number: u64) -> ServiceResult<Bytes> {
        let request = FrameRequest {
            selector: FrameSelector::Number(number),
            seek: Seek::Exact,
            output: self.output,
        };
        let answer = match self
            .service
            .frame(&self.mirror, &self.path, &request, &|_| false)
            .await?
        {
            Conditional::Fresh(answer) => answer,
            Conditional::Held(_) => {
                return Err(ServiceError::Internal(
                    "a frame was answered 'not modified' without being asked".into(),
                ));
            }
        };
        if answer.version_tag != frame_key(&self.version, number, &self.output).canonical() {
            return Err(lazycache_decode::Error::Source(SourceError::new(
                SourceErrorKind::Changed,
                format!("/{} changed at the origin during the answer", self.path),
            ))
            .into());
        }
        Ok(answer.value.bytes().clone())
    }
}

async fn send(sender: &mpsc::Sender<ServiceResult<Bytes>>, chunk: Bytes) -> Result<(), Stop> {
    sender
        .send_timeout(Ok(chunk), SEND_TIMEOUT)
        .await
        .map_err(|_| Stop::Gone)
}

impl Service {
    /// Many frames of the movie at `path` of `mirror` (SPEC §3): checked whole before the
    /// answer starts — raw output allowed, every frame within the movie, each frame's size,
    /// at most [`MAX_OUTPUT_BYTES`] estimated — then streamed by [`FramesAnswer::start`].
    /// `holds(tag)` as for [`Service::frame`].
    pub async fn frames(
        &self,
        mirror: &Arc<Mirror>,
        path: &RelPath,
        request: &FramesRequest,
        holds: &(dyn Fn(&str) -> bool + Sync),
    ) -> ServiceResult<Conditional<FramesAnswer>> {
        if request.output.format.is_raw() && !self.inner.options.allow_raw_output {
            return Err(ServiceError::RawOutputDisabled);
        }
        retry_if_changed(mirror, path, || async {
            let loaded = self.movie(mirror, path).await?;
            request.selection.check(loaded.movie.frame_count())?;
            let metadata = loaded.movie.metadata();
            let (width, height) =
                output_size((metadata.width, metadata.height), &request.output.render)?;
            let (descr, channels) = npy_element(&request.output);
            let mut frame_shape = vec![u64::from(height), u64::from(width)];
            frame_shape.extend(channels);
            let frame_bytes = frame_shape.iter().product::<u64>() * npy::sample_bytes(descr);
            let count = request.selection.len() as u64;
            let estimated = count * frame_bytes;
            if estimated > MAX_OUTPUT_BYTES {
                return Err(ServiceError::BadRequest(format!(
                    "{count} frames of {width}×{height} come to about {:.1} GiB; an answer may \
                     have at most {} GiB: ask for fewer or smaller frames",
                    estimated as f64 / f64::from(1u32 << 30),
                    MAX_OUTPUT_BYTES >> 30
                )));
            }
            let tag = frames_key(
                &loaded.version,
                &request.selection,
                request.container.extension(),
                &request.output,
            )
            .canonical()
            .to_owned();
            if holds(&tag) {
                return Ok(Conditional::Held(tag));
            }
            let (packing, content_length) = match request.container {
                Container::Npy => {
                    let mut shape = vec![count];
                    shape.extend(&frame_shape);
                    let header = npy::header(descr, &shape);
                    let length = header.len() as u64 + estimated;
                    let packing = Packing::Npy {
                        header,
                        descr,
                        frame_shape,
                    };
                    (packing, Some(length))
                }
                Container::Zip => (Packing::Zip(StoredZip::new()), None),
            };
            Ok(Conditional::Fresh(FramesAnswer {
                content_type: request.container.content_type(),
                content_length,
                version_tag: tag,
                frame_count: request.selection.len(),
                producer: Producer {
                    service: self.clone(),
                    mirror: Arc::clone(mirror),
                    path: path.clone(),
                    version: loaded.version,
                    frames: request.selection.frames().to_vec(),
                    output: request.output,
                    packing,
                },
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(segment: &str, format: Option<&str>) -> Result<FramesRequest, String> {
        FramesRequest::parse_segment(segment, format, &OutputParams::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn containers_and_formats() {
        let npy = parse("1-3.npy", None).ok();
        assert_eq!(
            npy.map(|r| (r.container, r.output.format)),
            Some((Container::Npy, Format::Npy))
        );
        let zip = parse("1,5.zip", None).ok();
        assert_eq!(
            zip.map(|r| (r.container, r.output.format)),
            Some((Container::Zip, Format::Png))
        );
        let jpg = parse("1-9:2.zip", Some("jpg")).ok();
        assert_eq!(
            jpg.map(|r| (r.output.format, r.output.quality, r.selection.len())),
            Some((Format::Jpeg, Some(75), 5))
        );
        assert!(parse("1-3.png", None).is_err_and(|e| e.contains(".npy or .zip")));
        assert!(parse("1-3", None).is_err());
        assert!(parse("1-3.zip", Some("rgba")).is_err_and(|e| e.contains("format must be")));
        assert!(parse("1-3.zip", Some("gif")).is_err());
        assert!(parse("1-3.npy", Some("png")).is_err_and(|e| e.contains("for .zip")));
        assert!(parse("0-3.npy", None).is_err_and(|e| e.contains("count from 1")));
    }
}
