//! The command line: `serve` (also the default), `probe`, `frame`, `frames` and `sprite`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use lazycache_origin::redact_url_text;
use lazycache_service::{
    ClipRequest, Format, FrameOutput, FrameRequest, FrameSelector, FramesRequest, OutputParams,
    Seek, ServiceError, SpriteParams, SpriteRequest,
};

use crate::config::{ServeArgs, ServeConfig};
use crate::oneshot::OneShot;

#[derive(Parser, Debug)]
#[command(
    name = "lazycache",
    version,
    about = "Serves single frames of huge remote movies, reading only the bytes it needs"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, the server runs with these options.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (the default). Every option also reads LAZYCACHE_<NAME> and the
    /// config file's <name> key; precedence: flag > environment > file > default.
    Serve(Box<ServeArgs>),
    /// Print a movie's metadata as JSON (the HTTP metadata route's object).
    Probe {
        /// A local path or an http(s)/gs/s3/file URL.
        source: String,
        /// Cache the movie's index here, as a server with this --cache-dir would.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<String>,
    },
    /// Write frame N (1-based) as an image.
    Frame(Box<FrameArgs>),
    /// Write frames A..B as a movie by stream copy (no re-encoding); the output's extension
    /// (mov, mp4, mkv) picks the container.
    Clip {
        /// A local path or an http(s)/gs/s3/file URL.
        source: String,
        /// The frames, `A-B` (1-based, inclusive).
        frames: String,
        /// The output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write many frames as one NumPy array (.npy) or a zip of images (.zip), as the
    /// frames/<SELECTION>.<npy|zip> route gives them.
    Frames(Box<FramesArgs>),
    /// Write a sprite (contact sheet) image, or its WebVTT map (.vtt), as the sprite route.
    Sprite(Box<SpriteArgs>),
}

#[derive(Args, Debug)]
struct FrameArgs {
    /// A local path or an http(s)/gs/s3/file URL.
    source: String,
    /// Frame number, counting from 1 (or give --time).
    #[arg(required_unless_present = "time", conflicts_with = "time")]
    number: Option<String>,
    /// The frame on screen at this time instead: seconds (12.5) or HH:MM:SS.mmm.
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// Output file; its extension picks the format (png, jpg, bmp, webp, rgba, npy). `-` or none: PNG on stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    options: OutputArgs,
    /// `exact` (default) or `keyframe`: the nearest shown keyframe at or before the frame.
    #[arg(long)]
    seek: Option<String>,
    /// Cache the movie's index and frames here, as a server with this --cache-dir would.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<String>,
}

/// The frame options, as the routes' query parameters.
#[derive(Args, Debug)]
struct OutputArgs {
    /// Output width in pixels (1 to 8192).
    #[arg(long)]
    width: Option<String>,
    /// Output height in pixels (1 to 8192).
    #[arg(long)]
    height: Option<String>,
    /// stretch, contain or cover (when both width and height are given).
    #[arg(long)]
    fit: Option<String>,
    /// x,y,width,height in source pixels, applied before resizing.
    #[arg(long)]
    crop: Option<String>,
    /// JPEG quality 1..100 [default: 75].
    #[arg(long)]
    quality: Option<String>,
    /// Bits per sample: 8 (default) or 16 (png and npy only).
    #[arg(long)]
    depth: Option<String>,
    /// `rgb` (default) or `gray` (luma only).
    #[arg(long)]
    channels: Option<String>,
}

impl OutputArgs {
    fn params(&self) -> OutputParams<'_> {
        OutputParams {
            width: self.width.as_deref(),
            height: self.height.as_deref(),
            fit: self.fit.as_deref(),
            crop: self.crop.as_deref(),
            quality: self.quality.as_deref(),
            depth: self.depth.as_deref(),
            channels: self.channels.as_deref(),
        }
    }
}

#[derive(Args, Debug)]
struct FramesArgs {
    /// A local path or an http(s)/gs/s3/file URL.
    source: String,
    /// A-B (inclusive), A-B:S (every S-th) or N,M,K; frames count from 1.
    selection: String,
    /// Output file: FILE.npy (one array) or FILE.zip (frame-<N>.<format> each).
    #[arg(short, long)]
    output: PathBuf,
    /// In a zip: png (default), jpg, bmp, webp or npy.
    #[arg(long)]
    format: Option<String>,
    #[command(flatten)]
    options: OutputArgs,
    /// Cache the movie's index and frames here, as a server with this --cache-dir would.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<String>,
}

#[derive(Args, Debug)]
struct SpriteArgs {
    /// A local path or an http(s)/gs/s3/file URL.
    source: String,
    /// Output file; its extension picks jpg, png, webp, or vtt (the WebVTT map of sprite.jpg).
    #[arg(short, long)]
    output: PathBuf,
    /// Tiles evenly over the movie [default: 16 unless --every].
    #[arg(long)]
    count: Option<String>,
    /// A tile every SECONDS instead of --count.
    #[arg(long, value_name = "SECONDS")]
    every: Option<String>,
    /// Tiles to a row [default: 4].
    #[arg(long)]
    cols: Option<String>,
    /// Tile width in pixels; the height follows the aspect ratio [default: 160].
    #[arg(long)]
    width: Option<String>,
    /// JPEG quality 1..100 [default: 75].
    #[arg(long)]
    quality: Option<String>,
    /// Cache the movie's index and frames here, as a server with this --cache-dir would.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<String>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    init_logging(if serving { "info" } else { "warn" });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lazycache: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Probe { source, cache_dir }) => probe(&source, cache_dir.as_deref()),
        Some(Command::Frame(args)) => frame(*args),
        Some(Command::Clip {
            source,
            frames,
            output,
        }) => clip(&source, &frames, &output),
        Some(Command::Frames(args)) => frames(*args),
        Some(Command::Sprite(args)) => sprite(*args),
    }
}

/// `clip`: the bytes the clip route gives for the same frames and container.
fn clip(source: &str, frames: &str, output: &std::path::Path) -> Result<()> {
    let extension = output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let request = ClipRequest::parse(frames, extension)?;
    let mut clip = OneShot::open(source, None)?.clip(&request)?;
    let mut file = std::fs::File::create(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    std::io::copy(&mut clip.file, &mut file)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}

fn serve(args: &ServeArgs) -> Result<()> {
    if args.print_options {
        print!("{}", crate::config::option_table());
        return Ok(());
    }
    let config = ServeConfig::resolve(args)?;
    crate::serve::serve(config)
}

/// `probe`: the metadata route's object, with `URL` naming the source as given.
fn probe(location: &str, cache_dir: Option<&str>) -> Result<()> {
    let answer = OneShot::open(location, cache_dir)?.metadata()?;
    let mut json = serde_json::to_value(answer.metadata)?;
    if let Some(object) = json.as_object_mut() {
        object.insert(
            "URL".into(),
            serde_json::Value::String(redact_url_text(location)),
        );
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// `frame`: the bytes the frame route gives for the same request.
fn frame(args: FrameArgs) -> Result<()> {
    let to_stdout = args.output.as_deref().is_none_or(|p| p.as_os_str() == "-");
    let extension = if to_stdout {
        None
    } else {
        args.output
            .as_deref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
    };
    let format = Format::from_extension(extension).map_err(ServiceError::from)?;
    let selector = match (&args.number, &args.time) {
        (_, Some(time)) => FrameSelector::time(time)?,
        (Some(number), None) => FrameSelector::number(number)?,
        (None, None) => anyhow::bail!("give a frame number or --time"),
    };
    let request = FrameRequest {
        selector,
        seek: Seek::parse(args.seek.as_deref())?,
        output: FrameOutput::parse(format, &args.options.params())?,
    };
    let answer = OneShot::open(&args.source, args.cache_dir.as_deref())?.frame(&request)?;
    let bytes = answer.value.bytes();
    match args.output.filter(|_| !to_stdout) {
        Some(path) => std::fs::write(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(bytes)?,
    }
    Ok(())
}

/// `frames`: the bytes the frames route gives for the same request, written as they come into
/// a partial file beside FILE that becomes FILE once complete (a failure part-way leaves none).
fn frames(args: FramesArgs) -> Result<()> {
    let extension = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let request = FramesRequest::parse(
        &args.selection,
        extension,
        args.format.as_deref(),
        &args.options.params(),
    )?;
    let oneshot = OneShot::open(&args.source, args.cache_dir.as_deref())?;
    let path = &args.output;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("frames");
    let partial = path.with_file_name(format!(".{name}.partial"));
    let cannot_write = || format!("cannot write {}", path.display());
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&partial).with_context(cannot_write)?);
    let written = oneshot.frames(&request, &mut file).and_then(|()| {
        file.flush().with_context(cannot_write)?;
        drop(file);
        std::fs::rename(&partial, path).with_context(cannot_write)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// `sprite`: the bytes the sprite route gives for the same parameters.
fn sprite(args: SpriteArgs) -> Result<()> {
    let extension = args.output.extension().and_then(|e| e.to_str());
    let request = SpriteRequest::parse(
        extension,
        &SpriteParams {
            count: args.count.as_deref(),
            every: args.every.as_deref(),
            cols: args.cols.as_deref(),
            width: args.width.as_deref(),
            quality: args.quality.as_deref(),
        },
    )?;
    let answer = OneShot::open(&args.source, args.cache_dir.as_deref())?.sprite(&request)?;
    std::fs::write(&args.output, answer.value.bytes())
        .with_context(|| format!("cannot write {}", args.output.display()))
}
