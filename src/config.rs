//! `lazycache serve`'s options (SPEC §2): each from its flag, its `LAZYCACHE_*` variable, the
//! TOML config file, or its default, in that order; go-lazycache's names as aliases; a bad
//! value refused in one line naming where it came from.
//!
//! Every option is one field of [`ServeConfig`], defined once by clap's attributes: the doc
//! line is its help, `long` its flag and config file key, `env` its variable, `default_value`
//! its default and `value_parser` its check. Resolution has two steps, both clap's:
//!
//! 1. [`ServeArgs`] is what the command line and the environment gave (clap's `env` support),
//!    as text: parsing the command line never fails on a value, so that a bad one can be
//!    refused later in one line that names its source.
//! 2. [`ServeConfig::resolve`] fills in, for each option neither gave, the config file's key
//!    (or Cloud Run's `PORT`), then checks every value with the option's own parser and
//!    builds the typed [`ServeConfig`]; what remains unset takes the option's default.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::builder::ValueParser;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use lazycache_origin::{MirrorSpec, redact_url_text};

/// The config files read when neither `--config` nor `LAZYCACHE_CONFIG` names one: the first
/// that exists.
const DEFAULT_CONFIG_FILES: &[&str] = &["/etc/lazycache/lazycache.toml", "lazycache.toml"];

/// Every option, resolved and checked. A field is an option (see the module's doc): adding
/// one is adding its field here (and its line in the sample `lazycache.toml`).
#[derive(Args, Clone)]
pub struct ServeConfig {
    /// TOML file setting any option below [default: /etc/lazycache/lazycache.toml, else ./lazycache.toml, when present]
    #[arg(long, env = "LAZYCACHE_CONFIG", value_name = "FILE", value_parser = path)]
    pub config: Option<PathBuf>,
    /// Interface to listen on
    #[arg(long, env = "LAZYCACHE_BIND", value_name = "ADDR", default_value = "0.0.0.0", value_parser = ip)]
    pub bind: IpAddr,
    /// Port; when neither --port nor LAZYCACHE_PORT is set, $PORT (Cloud Run) is honoured
    #[arg(long, env = "LAZYCACHE_PORT", value_name = "N", default_value = "8080", value_parser = port)]
    pub port: u16,
    /// A tree to serve: http(s)://, file://, gs://, s3:// (repeatable; variable and file: comma-separated)
    #[arg(long = "mirror", env = "LAZYCACHE_MIRROR", value_name = "[NAME=]URL", value_parser = mirror)]
    pub mirrors: Vec<MirrorSpec>,
    /// Disk tier location; empty disables it [default: $XDG_CACHE_HOME/lazycache or /var/cache/lazycache]
    #[arg(long, env = "LAZYCACHE_CACHE_DIR", value_name = "DIR", value_parser = path)]
    pub cache_dir: Option<PathBuf>,
    /// Disk tier bound, e.g. 20GiB
    #[arg(long, env = "LAZYCACHE_DISK_CACHE_SIZE", value_name = "SIZE", default_value = "10GiB", value_parser = size)]
    pub disk_cache_size: u64,
    /// Memory tier bound
    #[arg(long, env = "LAZYCACHE_MEMORY_CACHE_SIZE", value_name = "SIZE", default_value = "512MiB", value_parser = size)]
    pub memory_cache_size: u64,
    /// Memory for long-GOP decoder states kept so the next frame continues from them (estimated from picture size); 0 turns warm decoding off
    #[arg(long, env = "LAZYCACHE_DECODER_STATE_MEMORY", value_name = "SIZE", default_value = "256MiB", value_parser = size)]
    pub decoder_state_memory: u64,
    /// Shared tier: gs://bucket/prefix, s3://…, file:///…; empty disables it
    #[arg(long, env = "LAZYCACHE_OBJECT_STORE", value_name = "URL", value_parser = object_store)]
    pub object_store: Option<String>,
    /// Allow .rgba/.raw/.npy frames
    #[arg(long, env = "LAZYCACHE_ALLOW_RAW_OUTPUT", value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = boolean)]
    pub allow_raw_output: bool,
    /// Public mode: adds X-lazycache-public: 1
    #[arg(long, env = "LAZYCACHE_PUBLIC", value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = boolean)]
    pub public: bool,
    /// Local copies that take precedence over the mirrors' files
    #[arg(long, env = "LAZYCACHE_FILE_OVERLAY", value_name = "DIR", value_parser = path)]
    pub file_overlay: Option<PathBuf>,
    /// Match overlay files by base name
    #[arg(long, env = "LAZYCACHE_FILE_OVERLAY_FLATTEN", value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = boolean)]
    pub file_overlay_flatten: bool,
    /// Decode concurrency; excess waits, then gets 503 [default: number of CPUs]
    #[arg(long, env = "LAZYCACHE_MAX_CONCURRENT_DECODES", value_name = "N", default_value_t = cpus(), hide_default_value = true, value_parser = positive)]
    pub max_concurrent_decodes: usize,
    /// How long a request waits for a decode slot before its 503
    #[arg(long, env = "LAZYCACHE_DECODE_QUEUE_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub decode_queue_timeout: Duration,
    /// Largest coded frame a movie may have; a movie with a bigger one is refused (415) when its index is read
    #[arg(long, env = "LAZYCACHE_MAX_SAMPLE_SIZE", value_name = "SIZE", default_value = "64MiB", value_parser = size)]
    pub max_sample_size: u64,
    /// Wall-clock bound on one index build or one frame, origin reads included
    #[arg(long, env = "LAZYCACHE_DECODE_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub decode_timeout: Duration,
    /// How long directory listings and movie validators are trusted
    #[arg(long, env = "LAZYCACHE_LISTING_TTL", value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub listing_ttl: Duration,
    /// Longest a request may take
    #[arg(long, env = "LAZYCACHE_REQUEST_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Longest silence from an origin before it counts as timed out
    #[arg(long, env = "LAZYCACHE_ORIGIN_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub origin_timeout: Duration,
    /// In-flight requests per mirror to its origin; excess waits
    #[arg(long, env = "LAZYCACHE_ORIGIN_CONCURRENCY", value_name = "N", default_value = "32", value_parser = positive)]
    pub origin_concurrency: usize,
    /// After SIGTERM, how long /readyz says 503 while requests are still served, before the
    /// listener closes (for load balancers that route by readiness)
    #[arg(long, env = "LAZYCACHE_SHUTDOWN_DELAY", value_name = "DURATION", default_value = "0s", value_parser = duration)]
    pub shutdown_delay: Duration,
    /// File extensions served as movies (comma-separated)
    #[arg(long, env = "LAZYCACHE_MOVIE_EXTENSIONS", value_name = "EXTS", value_delimiter = ',', default_values = lazycache_http::options::DEFAULT_MOVIE_EXTENSIONS.iter().copied(), value_parser = extension)]
    pub movie_extensions: Vec<String>,
    /// Require this key on /v1, /metrics, /info and /ui (repeatable; variable and file: comma-separated)
    #[arg(long = "api-key", env = "LAZYCACHE_API_KEY", value_name = "KEY", hide_env_values = true, value_parser = key)]
    pub api_keys: Vec<String>,
    /// Sign object-store entries (HMAC-SHA256); unsigned or mismatched entries are misses. NEW,OLD during a rotation: signs with NEW, accepts both
    #[arg(long, env = "LAZYCACHE_CACHE_SIGNING_KEY", value_name = "KEY", hide_env_values = true, value_parser = key)]
    pub cache_signing_key: Option<String>,
    /// go-lazycache alias: none, local (--image-store-root) or google (--image-store-bucket)
    #[arg(long, env = "LAZYCACHE_IMAGE_STORE", value_name = "KIND", value_parser = image_store)]
    pub image_store: Option<String>,
    /// go-lazycache alias of --object-store gs://BUCKET
    #[arg(long, env = "LAZYCACHE_IMAGE_STORE_BUCKET", value_name = "BUCKET")]
    pub image_store_bucket: Option<String>,
    /// go-lazycache alias of --cache-dir
    #[arg(long, env = "LAZYCACHE_IMAGE_STORE_ROOT", value_name = "DIR", value_parser = path)]
    pub image_store_root: Option<PathBuf>,
}

/// Secrets (API keys, the cache signing key) are never shown, only counted.
impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.mirrors.iter().map(ToString::to_string).collect();
        f.debug_struct("ServeConfig")
            .field("config", &self.config)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("mirrors", &shown)
            .field("cache_dir", &self.cache_dir)
            .field("disk_cache_size", &self.disk_cache_size)
            .field("memory_cache_size", &self.memory_cache_size)
            .field("decoder_state_memory", &self.decoder_state_memory)
            .field("object_store", &self.object_store)
            .field("allow_raw_output", &self.allow_raw_output)
            .field("public", &self.public)
            .field("file_overlay", &self.file_overlay)
            .field("file_overlay_flatten", &self.file_overlay_flatten)
            .field("max_concurrent_decodes", &self.max_concurrent_decodes)
            .field("decode_queue_timeout", &self.decode_queue_timeout)
            .field("max_sample_size", &self.max_sample_size)
            .field("decode_timeout", &self.decode_timeout)
            .field("listing_ttl", &self.listing_ttl)
            .field("request_timeout", &self.request_timeout)
            .field("origin_timeout", &self.origin_timeout)
            .field("origin_concurrency", &self.origin_concurrency)
            .field("shutdown_delay", &self.shutdown_delay)
            .field("movie_extensions", &self.movie_extensions)
            .field("api_keys", &self.api_keys.len())
            .field("cache_signing_key", &self.cache_signing_key.is_some())
            .finish_non_exhaustive()
    }
}

/// The options, as clap defines them (help, flag, variable, default, parser).
fn definition() -> Command {
    ServeConfig::augment_args(Command::new("lazycache"))
}

/// One line per option: its flag, its variable and its config file key (`-`: none), tab
/// separated; what `lazycache serve --print-options` prints.
pub fn option_table() -> String {
    let mut table = String::new();
    for arg in definition().get_arguments() {
        if let Some(long) = arg.get_long() {
            let variable = arg.get_env().and_then(OsStr::to_str).unwrap_or("-");
            let key = if file_key(arg).is_some() { long } else { "-" };
            table.push_str(&format!("--{long}\t{variable}\t{key}\n"));
        }
    }
    table
}

/// The config file key of an option: its flag's name; `--config` itself has none.
fn file_key(arg: &Arg) -> Option<&str> {
    arg.get_long().filter(|long| *long != "config")
}

/// A list option: repeatable, or comma-separated.
fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append) || arg.get_value_delimiter().is_some()
}

/// A secret (API keys, the signing key): its value is never shown, in `--help` (clap's
/// `hide_env_values`) or in messages.
fn is_secret(arg: &Arg) -> bool {
    arg.is_hide_env_values_set()
}

/// Where an option's value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    Flag,
    Variable(String),
    File(String),
}

impl Origin {
    /// `--cache-dir`, `LAZYCACHE_CACHE_DIR` or `cache-dir in /etc/lazycache/lazycache.toml`.
    fn describe(&self, long: &str) -> String {
        match self {
            Self::Flag => format!("--{long}"),
            Self::Variable(name) => name.clone(),
            Self::File(path) => format!("{long} in {path}"),
        }
    }
}

/// An option's text(s) and where they came from.
#[derive(Clone)]
struct Given {
    values: Vec<String>,
    origin: Origin,
}

/// `lazycache serve`'s options as the command line and the `LAZYCACHE_*` variables gave them
/// (clap reads both), not yet checked: [`ServeConfig::resolve`] checks them.
#[derive(Clone, Default)]
pub struct ServeArgs {
    /// By option id (the field's name).
    given: BTreeMap<String, Given>,
    /// `--print-options`: print the option table instead of serving.
    pub print_options: bool,
}

/// Secret values are not shown.
impl fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let definition = definition();
        let given: Vec<String> = self
            .given
            .iter()
            .map(|(id, given)| {
                let secret = definition
                    .get_arguments()
                    .any(|arg| arg.get_id() == id.as_str() && is_secret(arg));
                match secret {
                    true => format!("{id} ({:?}): <secret>", given.origin),
                    false => format!("{id} ({:?}): {:?}", given.origin, given.values),
                }
            })
            .collect();
        f.debug_struct("ServeArgs")
            .field("given", &given)
            .field("print_options", &self.print_options)
            .finish()
    }
}

impl Args for ServeArgs {
    /// The options of [`ServeConfig`], taking any text: values are checked by `resolve`.
    fn augment_args(cmd: Command) -> Command {
        let ids: Vec<String> = definition()
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .collect();
        ids.iter()
            .fold(ServeConfig::augment_args(cmd), |cmd, id| {
                cmd.mut_arg(id, |arg| arg.value_parser(ValueParser::string()))
            })
            .arg(
                Arg::new("print_options")
                    .long("print-options")
                    .action(ArgAction::SetTrue)
                    .hide(true)
                    .help("Print each option's flag, variable and config file key, and exit"),
            )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut given = BTreeMap::new();
        for arg in definition().get_arguments() {
            let id = arg.get_id().as_str();
            let origin = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Origin::Flag,
                Some(ValueSource::EnvVariable) => Origin::Variable(
                    arg.get_env()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                _ => continue,
            };
            let values = matches
                .get_many::<String>(id)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            given.insert(id.to_owned(), Given { values, origin });
        }
        Ok(Self {
            given,
            print_options: matches.get_flag("print_options"),
        })
    }

    fn update_from_arg_matches(
        &mut self,
        matches: &ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The config file: its table and its name for messages.
struct ConfigFile {
    table: toml::Table,
    name: String,
}

impl ConfigFile {
    /// The file `--config`/`LAZYCACHE_CONFIG` names, else the first default that exists.
    fn find(args: &ServeArgs) -> Result<Option<Self>> {
        let (path, named_by) = match args.given.get("config") {
            Some(Given { values, origin }) => (
                PathBuf::from(values.last().map_or("", |v| v.trim())),
                origin.describe("config"),
            ),
            None => match DEFAULT_CONFIG_FILES
                .iter()
                .map(PathBuf::from)
                .find(|path| path.is_file())
            {
                Some(path) => (path, "config file".to_owned()),
                None => return Ok(None),
            },
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{named_by} {name}: cannot read it"))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            anyhow!("{named_by} {name}: not valid TOML: {}", e.message().trim())
        })?;
        let keys: Vec<String> = definition()
            .get_arguments()
            .filter_map(file_key)
            .map(str::to_owned)
            .collect();
        if let Some(unknown) = table.keys().find(|key| !keys.contains(key)) {
            bail!("{named_by} {name}: unknown option {unknown:?}");
        }
        Ok(Some(Self { table, name }))
    }

    /// The file's value(s) for `arg`: a string, number or boolean; for a list, also an array
    /// (or a comma-separated string).
    fn get(&self, arg: &Arg) -> Result<Option<Given>> {
        let Some(key) = file_key(arg) else {
            return Ok(None);
        };
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let origin = Origin::File(self.name.clone());
        let from = origin.describe(key);
        let values = match value {
            toml::Value::Array(items) if is_list(arg) => items
                .iter()
                .map(|item| {
                    scalar_text(item).ok_or_else(|| anyhow!("{from}: every item must be a string"))
                })
                .collect::<Result<Vec<_>>>()?,
            _ => {
                let text = scalar_text(value)
                    .ok_or_else(|| anyhow!("{from}: must be a string, number or boolean"))?;
                split_if_list(arg, &text)
            }
        };
        Ok(Some(Given { values, origin }))
    }
}

fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A variable's or a file string's text, as the option takes it: a list option's text is
/// comma-separated, and stray commas are ignored, but not in secrets, where an empty item is
/// refused (so that `LAZYCACHE_API_KEY=` fails closed instead of switching access off).
fn split_if_list(arg: &Arg, text: &str) -> Vec<String> {
    if !is_list(arg) {
        return vec![text.to_owned()];
    }
    text.split(',')
        .map(str::to_owned)
        .filter(|item| is_secret(arg) || !item.trim().is_empty())
        .collect()
}

/// What one option is set to, by precedence: flag or variable (clap's), Cloud Run's `PORT`
/// for the port, the config file. `None`: the option's default.
fn layer(
    arg: &Arg,
    args: &ServeArgs,
    host: &BTreeMap<String, String>,
    file: Option<&ConfigFile>,
) -> Result<Option<Given>> {
    if let Some(given) = args.given.get(arg.get_id().as_str()) {
        let values = match &given.origin {
            // Flags are one value each, but clap splits a comma-separated option's.
            Origin::Flag if arg.get_value_delimiter().is_some() => given
                .values
                .iter()
                .filter(|item| !item.trim().is_empty())
                .cloned()
                .collect(),
            Origin::Flag => given.values.clone(),
            _ => given
                .values
                .iter()
                .flat_map(|text| split_if_list(arg, text))
                .collect(),
        };
        return Ok(Some(Given {
            values,
            origin: given.origin.clone(),
        }));
    }
    if arg.get_long() == Some("port")
        && let Some(cloud_run) = host.get("PORT")
    {
        return Ok(Some(Given {
            values: vec![cloud_run.clone()],
            origin: Origin::Variable("PORT".into()),
        }));
    }
    match file {
        Some(file) => file.get(arg),
        None => Ok(None),
    }
}

/// Turns clap's error for a value into one line naming where the value came from; a secret's
/// value is not shown, and a URL's credentials are masked.
fn refusal(error: &clap::Error, origins: &BTreeMap<String, (Origin, bool)>) -> anyhow::Error {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    let invalid_arg = context(ContextKind::InvalidArg).unwrap_or_default();
    let long: String = invalid_arg
        .trim_start_matches('-')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let (from, secret) = match origins.get(&long) {
        Some((origin, secret)) => (origin.describe(&long), *secret),
        None => (format!("--{long}"), false),
    };
    let why = match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        }
    };
    let line = match context(ContextKind::InvalidValue) {
        Some(value) if !secret => {
            let shown = redact_url_text(&value);
            format!("invalid value {shown:?} for {from}: {why}")
        }
        _ => format!("invalid value for {from}: {why}"),
    };
    anyhow!("{}", line.replace('\n', " "))
}

impl ServeConfig {
    /// Resolves `args` (flags and `LAZYCACHE_*` variables) against the config file and the
    /// process environment's `PORT` and `XDG_CACHE_HOME`.
    pub fn resolve(args: &ServeArgs) -> Result<Self> {
        let host: BTreeMap<String, String> = ["PORT", "XDG_CACHE_HOME"]
            .into_iter()
            .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
            .collect();
        Self::resolve_with(args, &host)
    }

    /// Resolves `args` against the config file and `host`, the variables besides
    /// `LAZYCACHE_*` that count (`PORT`, `XDG_CACHE_HOME`).
    pub fn resolve_with(args: &ServeArgs, host: &BTreeMap<String, String>) -> Result<Self> {
        let file = ConfigFile::find(args)?;
        let command = definition();
        // The layered values become one command line for the typed definition, without
        // variables: each option's parser checks it, and what is missing gets its default.
        let mut argv = vec!["lazycache".to_owned()];
        let mut origins = BTreeMap::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let Some(given) = layer(arg, args, host, file.as_ref())? else {
                continue;
            };
            // An empty list cannot silently mean "the default", nor "no key".
            if given.values.is_empty() && (is_secret(arg) || !arg.get_default_values().is_empty()) {
                bail!(
                    "invalid value for {}: empty (give a value, or leave it unset)",
                    given.origin.describe(long)
                );
            }
            argv.extend(
                given
                    .values
                    .iter()
                    .map(|value| format!("--{long}={}", value.trim())),
            );
            origins.insert(long.to_owned(), (given.origin, is_secret(arg)));
        }
        let checked = command
            .mut_args(|arg| arg.env(None))
            .disable_help_flag(true)
            .try_get_matches_from(argv)
            .map_err(|error| refusal(&error, &origins))?;
        let mut config =
            Self::from_arg_matches(&checked).map_err(|error| refusal(&error, &origins))?;
        config.apply_aliases(host);
        Ok(config)
    }

    /// Empty `--cache-dir`, `--object-store` and `--file-overlay` switch them off; without
    /// them, go-lazycache's `--image-store*` apply, then the defaults.
    fn apply_aliases(&mut self, host: &BTreeMap<String, String>) {
        let no_store = self.image_store.as_deref() == Some("none");
        let non_empty = |path: Option<PathBuf>| path.filter(|p| !p.as_os_str().is_empty());
        self.cache_dir = match self.cache_dir.take() {
            Some(dir) => non_empty(Some(dir)),
            None if no_store => None,
            None => match non_empty(self.image_store_root.clone()) {
                Some(root) => Some(root),
                None => Some(match host.get("XDG_CACHE_HOME") {
                    Some(xdg) if !xdg.is_empty() => PathBuf::from(xdg).join("lazycache"),
                    _ => PathBuf::from("/var/cache/lazycache"),
                }),
            },
        };
        self.object_store = match self.object_store.take() {
            Some(url) => Some(url).filter(|url| !url.is_empty()),
            None if no_store => None,
            None => self
                .image_store_bucket
                .as_deref()
                .map(str::trim)
                .filter(|bucket| !bucket.is_empty())
                .map(|bucket| format!("gs://{bucket}")),
        };
        self.file_overlay = non_empty(self.file_overlay.take());
    }
}

// The options' parsers: each message says what was expected; the caller names the option.

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn path(text: &str) -> std::result::Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

fn ip(text: &str) -> std::result::Result<IpAddr, String> {
    text.parse().map_err(|_| "not an IP address".to_owned())
}

fn port(text: &str) -> std::result::Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| "not a port number (1-65535)".to_owned())
}

fn mirror(text: &str) -> std::result::Result<MirrorSpec, String> {
    text.parse()
        .map_err(|e: lazycache_origin::OriginError| e.to_string())
}

fn size(text: &str) -> std::result::Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| "not a size (e.g. 512MiB, 20GiB)".to_owned())
}

fn duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| "not a duration (e.g. 30s, 5m)".to_owned())
}

/// `--public` alone (or an empty value) is true.
fn boolean(text: &str) -> std::result::Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("not a boolean (true or false)".to_owned()),
    }
}

fn positive(text: &str) -> std::result::Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "not a positive whole number".to_owned())
}

/// Empty (no object-store tier) or a gs://, s3:// or file:// URL.
fn object_store(text: &str) -> std::result::Result<String, String> {
    let scheme = text.split_once("://").map(|(scheme, _)| scheme);
    if text.is_empty() || matches!(scheme, Some("gs" | "s3" | "file")) {
        Ok(text.to_owned())
    } else {
        Err("must be a gs://, s3:// or file:// URL".to_owned())
    }
}

fn extension(text: &str) -> std::result::Result<String, String> {
    let extension = text.trim_start_matches('.').to_ascii_lowercase();
    if extension.is_empty() {
        return Err("not a file extension".to_owned());
    }
    Ok(extension)
}

/// API keys and the signing key fail closed: an empty or blank key is refused rather than
/// read as "no key" (which would switch the check off).
fn key(text: &str) -> std::result::Result<String, String> {
    let key = text.trim();
    if key.is_empty() {
        return Err("a key must not be empty or blank".to_owned());
    }
    Ok(key.to_owned())
}

fn image_store(text: &str) -> std::result::Result<String, String> {
    match text {
        "none" | "local" | "google" => Ok(text.to_owned()),
        _ => Err("must be none, local or google".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// `ServeArgs` as clap would give them for `argv` with the variables `env`, without
    /// touching the process's environment: a variable counts when its flag is absent.
    fn args(argv: &[&str], env: &[(&str, &str)]) -> ServeArgs {
        let command = ServeArgs::augment_args(Command::new("lazycache")).mut_args(|a| a.env(None));
        let matches = command
            .try_get_matches_from(std::iter::once("lazycache").chain(argv.iter().copied()))
            .unwrap();
        let mut args = ServeArgs::from_arg_matches(&matches).unwrap();
        for arg in definition().get_arguments() {
            let variable = arg.get_env().and_then(OsStr::to_str).unwrap();
            if let Some((_, value)) = env.iter().find(|(name, _)| *name == variable) {
                args.given
                    .entry(arg.get_id().to_string())
                    .or_insert_with(|| Given {
                        values: vec![(*value).to_owned()],
                        origin: Origin::Variable(variable.to_owned()),
                    });
            }
        }
        args
    }

    fn host(env: &[(&str, &str)]) -> BTreeMap<String, String> {
        env.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Resolves `argv` with the variables `env` (and no config file unless `argv` names one).
    fn resolve(argv: &[&str], env: &[(&str, &str)]) -> Result<ServeConfig> {
        let mut argv = argv.to_vec();
        if !argv.contains(&"--config") && !env.iter().any(|(name, _)| *name == "LAZYCACHE_CONFIG") {
            argv.extend(["--config", "/dev/null"]);
        }
        ServeConfig::resolve_with(&args(&argv, env), &host(env))
    }

    fn refused(argv: &[&str], env: &[(&str, &str)], names: &str) -> String {
        let error = resolve(argv, env).unwrap_err().to_string();
        assert!(error.contains(names) && !error.contains('\n'), "{error}");
        error
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn path_of(file: &tempfile::NamedTempFile) -> &str {
        file.path().to_str().unwrap()
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let file = file("port = 7000\nlisting-ttl = \"1m\"\npublic = true\n");
        let with_file = ["--config", path_of(&file)];
        let config = resolve(&with_file, &[]).unwrap();
        assert_eq!(config.port, 7000);
        assert_eq!(config.listing_ttl, Duration::from_secs(60));
        assert!(config.public);
        assert_eq!(config.memory_cache_size, 512 << 20);
        let config = resolve(&with_file, &[("LAZYCACHE_PORT", "7001")]).unwrap();
        assert_eq!(config.port, 7001);
        let flag = [&with_file[..], &["--port", "7002"]].concat();
        let config = resolve(&flag, &[("LAZYCACHE_PORT", "7001")]).unwrap();
        assert_eq!(config.port, 7002);
    }

    #[test]
    fn cloud_run_port_applies_only_without_flag_or_lazycache_port() {
        let port = |env: &[(&str, &str)]| resolve(&[], env).unwrap().port;
        assert_eq!(port(&[]), 8080);
        assert_eq!(port(&[("PORT", "9000")]), 9000);
        assert_eq!(port(&[("PORT", "9000"), ("LAZYCACHE_PORT", "9001")]), 9001);
        let flag = resolve(&["--port", "9002"], &[("PORT", "9000")]).unwrap();
        assert_eq!(flag.port, 9002);
        refused(&[], &[("PORT", "http")], "PORT");
    }

    #[test]
    fn lists_sizes_and_aliases() {
        let file = file(
            "mirror = [\"a=file:///tmp/\", \"https://rawdata.oceanobservatories.org/files/\"]\n\
             image-store = \"google\"\nimage-store-bucket = \"frames\"\nimage-store-root = \"/srv/c\"\n\
             disk-cache-size = \"20GiB\"\n",
        );
        let with_file = ["--config", path_of(&file)];
        let config = resolve(&with_file, &[("LAZYCACHE_API_KEY", "k1, k2")]).unwrap();
        assert_eq!(config.mirrors.len(), 2);
        assert_eq!(config.object_store.as_deref(), Some("gs://frames"));
        assert_eq!(config.cache_dir, Some(PathBuf::from("/srv/c")));
        assert_eq!(config.disk_cache_size, 20 << 30);
        assert_eq!(config.api_keys, vec!["k1", "k2"]);
        let config = resolve(
            &with_file,
            &[
                ("LAZYCACHE_IMAGE_STORE", "none"),
                ("LAZYCACHE_MIRROR", "file:///x/,b=file:///y/"),
            ],
        )
        .unwrap();
        assert_eq!((config.object_store, config.cache_dir), (None, None));
        assert_eq!(config.mirrors.len(), 2);
        let config = resolve(
            &["--mirror", "file:///x/", "--mirror", "b=file:///y/"],
            &[("LAZYCACHE_MIRROR", "ignored=file:///z/")],
        )
        .unwrap();
        assert_eq!(config.mirrors.len(), 2);
        let config = resolve(&[], &[("LAZYCACHE_MIRROR", "")]).unwrap();
        assert!(config.mirrors.is_empty());
        let config = resolve(&["--movie-extensions", ".MOV, mp4,"], &[]).unwrap();
        assert_eq!(config.movie_extensions, vec!["mov", "mp4"]);
        let config = resolve(&[], &[]).unwrap();
        assert_eq!(
            config.movie_extensions,
            lazycache_http::options::DEFAULT_MOVIE_EXTENSIONS
        );
        refused(
            &[],
            &[("LAZYCACHE_MOVIE_EXTENSIONS", " ,")],
            "LAZYCACHE_MOVIE_EXTENSIONS",
        );
    }

    #[test]
    fn empty_values_switch_tiers_off_and_bare_booleans_are_true() {
        let config = resolve(&[], &[("XDG_CACHE_HOME", "/xdg")]).unwrap();
        assert_eq!(config.cache_dir, Some(PathBuf::from("/xdg/lazycache")));
        assert_eq!(config.object_store, None);
        let config = resolve(&["--cache-dir", "", "--object-store", ""], &[]).unwrap();
        assert_eq!((config.cache_dir, config.object_store), (None, None));
        let off = [
            ("LAZYCACHE_CACHE_DIR", ""),
            ("LAZYCACHE_OBJECT_STORE", ""),
            ("LAZYCACHE_IMAGE_STORE_BUCKET", "frames"),
        ];
        let config = resolve(&[], &off).unwrap();
        assert_eq!((config.cache_dir, config.object_store), (None, None));
        let config = resolve(&["--public", "--allow-raw-output=false"], &[]).unwrap();
        assert!(config.public && !config.allow_raw_output);
        let config = resolve(&[], &[("LAZYCACHE_FILE_OVERLAY_FLATTEN", "yes")]).unwrap();
        assert!(config.file_overlay_flatten);
        refused(&["--public=maybe"], &[], "--public");
        refused(&["--object-store", "ftp://x/"], &[], "--object-store");
    }

    #[test]
    fn api_keys_are_trimmed_and_fail_closed() {
        let config = resolve(&["--api-key", " k1 "], &[]).unwrap();
        assert_eq!(config.api_keys, vec!["k1"]);
        let from_file = file("api-key = [\"from-file\"]\n");
        let from_file = ["--config", path_of(&from_file)];
        let config = resolve(&from_file, &[]).unwrap();
        assert_eq!(config.api_keys, vec!["from-file"]);
        refused(
            &from_file,
            &[("LAZYCACHE_API_KEY", "")],
            "LAZYCACHE_API_KEY",
        );
        refused(
            &from_file,
            &[("LAZYCACHE_API_KEY", " , ")],
            "LAZYCACHE_API_KEY",
        );
        refused(
            &from_file,
            &[("LAZYCACHE_API_KEY", "k1,,k2")],
            "LAZYCACHE_API_KEY",
        );
        refused(&["--api-key", "k1", "--api-key", "  "], &[], "--api-key");
        let blank_in_file = file("api-key = \"\"\n");
        refused(&["--config", path_of(&blank_in_file)], &[], "api-key in");
        let blank_item = file("api-key = [\"ok\", \" \"]\n");
        refused(&["--config", path_of(&blank_item)], &[], "api-key in");
    }

    #[test]
    fn a_bad_mirror_is_refused_without_its_password() {
        let error = refused(
            &["--mirror", "http://user:hunter2@h.example/?q"],
            &[],
            "--mirror",
        );
        assert!(!error.contains("hunter2"), "{error}");
        let error = refused(
            &[],
            &[("LAZYCACHE_MIRROR", "ftp://user:hunter2@h.example/")],
            "LAZYCACHE_MIRROR",
        );
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn a_bad_value_is_one_line_naming_its_source() {
        let bad = file("memory-cache-size = \"lots\"\n");
        let error = refused(&["--config", path_of(&bad)], &[], "memory-cache-size in ");
        assert!(error.contains("lots"), "{error}");
        refused(
            &[],
            &[("LAZYCACHE_MAX_CONCURRENT_DECODES", "0")],
            "LAZYCACHE_MAX_CONCURRENT_DECODES",
        );
        let error = refused(&["--shutdown-delay", "soon"], &[], "--shutdown-delay");
        assert!(error.contains("soon"), "{error}");
        refused(&["--image-store", "cloud"], &[], "--image-store");
        let unknown = file("colour = \"blue\"\n");
        refused(
            &["--config", path_of(&unknown)],
            &[],
            "unknown option \"colour\"",
        );
        let not_a_list = file("port = [1, 2]\n");
        refused(&["--config", path_of(&not_a_list)], &[], "port in ");
        refused(
            &["--config", "/nonexistent/lazycache.toml"],
            &[],
            "--config",
        );
        refused(
            &[],
            &[("LAZYCACHE_CONFIG", "/nonexistent/lazycache.toml")],
            "LAZYCACHE_CONFIG",
        );
    }

    #[test]
    fn decode_timeout_origin_concurrency_and_signing_key() {
        let config = resolve(&[], &[]).unwrap();
        assert_eq!(config.decode_timeout, Duration::from_secs(60));
        assert_eq!(config.origin_concurrency, 32);
        assert_eq!(config.cache_signing_key, None);
        let settings = file("decode-timeout = \"90s\"\norigin-concurrency = 8\n");
        let config = resolve(
            &["--config", path_of(&settings)],
            &[("LAZYCACHE_CACHE_SIGNING_KEY", " s3cret-value ")],
        )
        .unwrap();
        assert_eq!(config.decode_timeout, Duration::from_secs(90));
        assert_eq!(config.origin_concurrency, 8);
        assert_eq!(config.cache_signing_key.as_deref(), Some("s3cret-value"));
        assert!(!format!("{config:?}").contains("s3cret"));
        refused(&["--origin-concurrency", "0"], &[], "--origin-concurrency");
        refused(
            &[],
            &[("LAZYCACHE_DECODE_TIMEOUT", "later")],
            "LAZYCACHE_DECODE_TIMEOUT",
        );
        refused(&["--cache-signing-key", " "], &[], "--cache-signing-key");
        refused(
            &[],
            &[("LAZYCACHE_CACHE_SIGNING_KEY", "")],
            "LAZYCACHE_CACHE_SIGNING_KEY",
        );
        // A secret's value is never shown, not even when refused.
        let error = refused(&["--cache-signing-key=\t"], &[], "--cache-signing-key");
        assert!(!error.contains('\t'), "{error}");
        let empty_list = file("api-key = []\n");
        refused(&["--config", path_of(&empty_list)], &[], "api-key in");
        let args = args(&["--api-key", "k-secret"], &[]);
        assert!(!format!("{args:?}").contains("k-secret"));
    }

    #[test]
    fn every_option_is_listed_with_its_flag_variable_and_key() {
        let table = option_table();
        let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(lines.len(), definition().get_arguments().count());
        for line in &lines {
            let [flag, variable, key] = line[..] else {
                panic!("not three columns: {line:?}");
            };
            let name = flag.trim_start_matches("--");
            let expected = format!("LAZYCACHE_{}", name.to_ascii_uppercase().replace('-', "_"));
            assert_eq!(variable, expected);
            assert_eq!(key, if name == "config" { "-" } else { name });
        }
        for wanted in [
            "--mirror\tLAZYCACHE_MIRROR\tmirror",
            "--api-key\tLAZYCACHE_API_KEY\tapi-key",
            "--decode-timeout\tLAZYCACHE_DECODE_TIMEOUT\tdecode-timeout",
            "--origin-concurrency\tLAZYCACHE_ORIGIN_CONCURRENCY\torigin-concurrency",
            "--cache-signing-key\tLAZYCACHE_CACHE_SIGNING_KEY\tcache-signing-key",
            "--image-store-root\tLAZYCACHE_IMAGE_STORE_ROOT\timage-store-root",
            "--config\tLAZYCACHE_CONFIG\t-",
        ] {
            assert!(
                table.lines().any(|line| line == wanted),
                "{wanted:?} missing:\n{table}"
            );
        }
        assert!(args(&["--print-options"], &[]).print_options);
        assert!(!args(&[], &[]).print_options);
    }

    #[test]
    fn every_option_has_help_and_a_line_in_the_sample_config() {
        let sample = include_str!("../lazycache.toml");
        for arg in definition().get_arguments() {
            assert!(arg.get_help().is_some(), "{} has no help", arg.get_id());
            if let Some(key) = file_key(arg) {
                let documented = sample.lines().any(|line| {
                    line.trim_start_matches(['#', ' '])
                        .strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                });
                assert!(documented, "lazycache.toml does not show {key}");
            }
        }
    }
}
