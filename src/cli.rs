//! The command line: `serve` (also the default), `probe` and `frame`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use lazycache_decode::{Crop, Fit, Format, Limits, Movie, RenderOptions};

use crate::config::{ServeArgs, ServeConfig};

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
    },
    /// Write frame N (1-based) as an image.
    Frame(FrameArgs),
}

#[derive(Args, Debug)]
struct FrameArgs {
    /// A local path or an http(s)/gs/s3/file URL.
    source: String,
    /// Frame number, counting from 1.
    number: u64,
    /// Output file; its extension picks the format (png, jpg, bmp, webp, rgba, npy). `-` or none: PNG on stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(long)]
    width: Option<u32>,
    #[arg(long)]
    height: Option<u32>,
    /// stretch, contain or cover (when both width and height are given).
    #[arg(long, default_value = "stretch")]
    fit: Fit,
    /// x,y,width,height in source pixels, applied before resizing.
    #[arg(long)]
    crop: Option<Crop>,
    /// JPEG quality 1..100.
    #[arg(long)]
    quality: Option<u8>,
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
        Some(Command::Probe { source }) => probe(&source),
        Some(Command::Frame(args)) => frame(args),
    }
}

fn serve(args: &ServeArgs) -> Result<()> {
    if args.print_options {
        print!("{}", crate::config::option_table());
        return Ok(());
    }
    let config = ServeConfig::resolve(args)?;
    crate::serve::serve(config)
}

/// Opens a movie from a local path or an http(s)/file/gs/s3 URL. Origin I/O runs on a small
/// runtime; decoding stays on this (non-runtime) thread, where the source may block on it.
fn open_movie(location: &str, runtime: &tokio::runtime::Runtime) -> Result<Movie> {
    let source = crate::source::open_source(location, runtime.handle())?;
    Movie::open(source, Limits::default()).with_context(|| format!("cannot read {location}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")
}

fn probe(location: &str) -> Result<()> {
    let runtime = runtime()?;
    let movie = open_movie(location, &runtime)?;
    let mut json = serde_json::to_value(movie.metadata())?;
    if let Some(object) = json.as_object_mut() {
        object.insert("URL".into(), serde_json::Value::String(location.to_owned()));
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

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
    let format = Format::from_extension(extension)?;
    let runtime = runtime()?;
    let movie = open_movie(&args.source, &runtime)?;
    let options = RenderOptions {
        width: args.width,
        height: args.height,
        fit: args.fit,
        crop: args.crop,
    };
    let encoded = movie
        .frame(args.number, &options, format, args.quality)
        .with_context(|| format!("frame {} of {}", args.number, args.source))?;
    match args.output.filter(|_| !to_stdout) {
        Some(path) => std::fs::write(&path, &encoded.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(&encoded.bytes)?,
    }
    Ok(())
}
