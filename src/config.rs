//! `lazycache serve`'s options (SPEC §2): each from its flag, its `LAZYCACHE_*` variable, the
//! TOML config file, or its default, in that order; go-lazycache's names as aliases; a bad
//! value refused in one line naming where it came from.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use lazycache_origin::{MirrorSpec, redact_url_text};

/// Server options. Each also reads `LAZYCACHE_<NAME>` and the config file key `<name>`.
#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML file setting any option below [default: /etc/lazycache/lazycache.toml, else ./lazycache.toml, when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Interface to listen on [default: 0.0.0.0]
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Port [default: $PORT when set, else 8080]
    #[arg(long, value_name = "N")]
    pub port: Option<String>,
    /// A tree to serve: http(s)://, file://, gs://, s3:// (repeatable; env: comma-separated)
    #[arg(long, value_name = "[NAME=]URL")]
    pub mirror: Vec<String>,
    /// Disk tier location; empty disables it [default: $XDG_CACHE_HOME/lazycache or /var/cache/lazycache]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<String>,
    /// Disk tier bound, e.g. 20GiB [default: 10GiB]
    #[arg(long, value_name = "SIZE")]
    pub disk_cache_size: Option<String>,
    /// Memory tier bound [default: 512MiB]
    #[arg(long, value_name = "SIZE")]
    pub memory_cache_size: Option<String>,
    /// Shared tier: gs://bucket/prefix, s3://…, file:///…; empty disables it
    #[arg(long, value_name = "URL")]
    pub object_store: Option<String>,
    /// Allow .rgba/.raw/.npy frames
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allow_raw_output: Option<String>,
    /// Public mode: adds X-lazycache-public: 1
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub public: Option<String>,
    /// Local copies that take precedence over the mirrors' files
    #[arg(long, value_name = "DIR")]
    pub file_overlay: Option<String>,
    /// Match overlay files by base name
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub file_overlay_flatten: Option<String>,
    /// Decode concurrency; excess waits, then gets 503 [default: number of CPUs]
    #[arg(long, value_name = "N")]
    pub max_concurrent_decodes: Option<String>,
    /// How long a request waits for a decode slot before its 503 [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub decode_queue_timeout: Option<String>,
    /// How long directory listings and movie validators are trusted [default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub listing_ttl: Option<String>,
    /// Longest a request may take [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Longest silence from an origin before it counts as timed out [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub origin_timeout: Option<String>,
    /// After SIGTERM, how long /readyz says 503 while requests are still served, before the
    /// listener closes (for load balancers that route by readiness) [default: 0s]
    #[arg(long, value_name = "DURATION")]
    pub shutdown_delay: Option<String>,
    /// File extensions served as movies (comma-separated) [default: mov,mp4,m4v,mkv,webm,avi,mxf,ts]
    #[arg(long, value_name = "EXTS")]
    pub movie_extensions: Option<String>,
    /// Require this key on /v1 routes (repeatable; env: comma-separated)
    #[arg(long, value_name = "KEY")]
    pub api_key: Vec<String>,
    /// go-lazycache alias: none, local (--image-store-root) or google (--image-store-bucket)
    #[arg(long, value_name = "KIND")]
    pub image_store: Option<String>,
    /// go-lazycache alias of --object-store gs://BUCKET
    #[arg(long, value_name = "BUCKET")]
    pub image_store_bucket: Option<String>,
    /// go-lazycache alias of --cache-dir
    #[arg(long, value_name = "DIR")]
    pub image_store_root: Option<String>,
}

/// Every option, resolved and checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub mirrors: Vec<MirrorSpec>,
    pub cache_dir: Option<PathBuf>,
    pub disk_cache_size: u64,
    pub memory_cache_size: u64,
    pub object_store: Option<String>,
    pub allow_raw_output: bool,
    pub public: bool,
    pub file_overlay: Option<PathBuf>,
    pub file_overlay_flatten: bool,
    pub max_concurrent_decodes: usize,
    pub decode_queue_timeout: Duration,
    pub listing_ttl: Duration,
    pub request_timeout: Duration,
    pub origin_timeout: Duration,
    pub shutdown_delay: Duration,
    pub movie_extensions: Vec<String>,
    pub api_keys: Vec<String>,
}

/// The config file keys: every option's long name.
const FILE_KEYS: &[&str] = &[
    "bind",
    "port",
    "mirror",
    "cache-dir",
    "disk-cache-size",
    "memory-cache-size",
    "object-store",
    "allow-raw-output",
    "public",
    "file-overlay",
    "file-overlay-flatten",
    "max-concurrent-decodes",
    "decode-queue-timeout",
    "listing-ttl",
    "request-timeout",
    "origin-timeout",
    "shutdown-delay",
    "movie-extensions",
    "api-key",
    "image-store",
    "image-store-bucket",
    "image-store-root",
];

/// One option's raw text and where it came from (for messages).
struct Raw {
    text: String,
    from: String,
}

/// Where values are looked up, below the flags.
struct Layers {
    env: BTreeMap<String, String>,
    file: toml::Table,
    file_name: String,
}

impl Layers {
    /// One value: flag, else `LAZYCACHE_<NAME>`, else the file's key.
    fn one(&self, name: &str, flag: Option<&String>) -> Result<Option<Raw>> {
        if let Some(text) = flag {
            return Ok(Some(Raw {
                text: text.clone(),
                from: format!("--{name}"),
            }));
        }
        let variable = env_name(name);
        if let Some(text) = self.env.get(&variable) {
            return Ok(Some(Raw {
                text: text.clone(),
                from: variable,
            }));
        }
        match self.file.get(name) {
            None => Ok(None),
            Some(value) => Ok(Some(Raw {
                text: scalar_text(value).ok_or_else(|| {
                    anyhow!(
                        "{}: {name} must be a string, number or boolean",
                        self.file_name
                    )
                })?,
                from: format!("{name} in {}", self.file_name),
            })),
        }
    }

    /// A repeatable value: the flags, else the comma-separated variable, else the file's
    /// array (or comma-separated string).
    fn many(&self, name: &str, flags: &[String]) -> Result<Option<(Vec<String>, String)>> {
        if !flags.is_empty() {
            return Ok(Some((flags.to_vec(), format!("--{name}"))));
        }
        let variable = env_name(name);
        if let Some(text) = self.env.get(&variable) {
            return Ok(Some((split_list(text), variable)));
        }
        let from = format!("{name} in {}", self.file_name);
        match self.file.get(name) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => {
                let values = items
                    .iter()
                    .map(|item| {
                        scalar_text(item)
                            .ok_or_else(|| anyhow!("{from}: every item must be a string"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some((values, from)))
            }
            Some(value) => {
                let text = scalar_text(value).ok_or_else(|| anyhow!("{from}: not a list"))?;
                Ok(Some((split_list(&text), from)))
            }
        }
    }
}

fn env_name(option: &str) -> String {
    format!(
        "LAZYCACHE_{}",
        option.to_ascii_uppercase().replace('-', "_")
    )
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
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

fn invalid(raw: &Raw, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("invalid value {:?} for {}: {why}", raw.text, raw.from)
}

fn parse_with<T>(
    raw: Option<Raw>,
    default: T,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<T> {
    match raw {
        None => Ok(default),
        Some(raw) => parse(raw.text.trim()).map_err(|why| invalid(&raw, why)),
    }
}

fn size(text: &str) -> std::result::Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| "not a size (e.g. 512MiB, 20GiB)".to_owned())
}

fn duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| "not a duration (e.g. 30s, 5m)".to_owned())
}

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

/// The config file `--config`/`LAZYCACHE_CONFIG` names, else the first default that exists.
fn config_file(args: &ServeArgs, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if let Some(path) = &args.config {
        return Some(path.clone());
    }
    if let Some(path) = env.get("LAZYCACHE_CONFIG") {
        return Some(PathBuf::from(path));
    }
    ["/etc/lazycache/lazycache.toml", "lazycache.toml"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

fn read_file(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--config {}: cannot read it", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        anyhow!(
            "--config {}: not valid TOML: {}",
            path.display(),
            e.message()
        )
    })?;
    if let Some(unknown) = table.keys().find(|key| !FILE_KEYS.contains(&key.as_str())) {
        bail!("--config {}: unknown option {unknown:?}", path.display());
    }
    Ok(table)
}

/// `--api-key` fails closed: an empty or blank key, or a `LAZYCACHE_API_KEY` that is set but
/// names no key, is refused rather than read as "no keys" (which would switch access off).
fn api_keys(layers: &Layers, flags: &[String]) -> Result<Vec<String>> {
    if let Some(blank) = flags.iter().find(|key| key.trim().is_empty()) {
        bail!("invalid value {blank:?} for --api-key: a key must not be empty or blank");
    }
    let variable = env_name("api-key");
    if flags.is_empty()
        && let Some(text) = layers.env.get(&variable)
        && (text.trim().is_empty() || text.split(',').any(|key| key.trim().is_empty()))
    {
        bail!("{variable} is set but names an empty key: unset it, or give comma-separated keys");
    }
    let Some((keys, from)) = layers.many("api-key", flags)? else {
        return Ok(Vec::new());
    };
    if keys.iter().any(|key| key.trim().is_empty()) || keys.is_empty() {
        bail!("invalid value for {from}: a key must not be empty or blank");
    }
    Ok(keys.iter().map(|key| key.trim().to_owned()).collect())
}

impl ServeConfig {
    /// Resolves `args` against the process environment and the config file.
    pub fn resolve(args: &ServeArgs) -> Result<Self> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(name, _)| {
                name.starts_with("LAZYCACHE_") || name == "PORT" || name == "XDG_CACHE_HOME"
            })
            .collect();
        Self::resolve_with(args, env)
    }

    /// Resolves `args` against `env` (variables by name) and the config file.
    pub fn resolve_with(args: &ServeArgs, env: BTreeMap<String, String>) -> Result<Self> {
        let (file, file_name) = match config_file(args, &env) {
            Some(path) => (read_file(&path)?, path.display().to_string()),
            None => (toml::Table::new(), String::new()),
        };
        let layers = Layers {
            env,
            file,
            file_name,
        };
        let a = args;
        let bind = parse_with(
            layers.one("bind", a.bind.as_ref())?,
            IpAddr::from([0, 0, 0, 0]),
            |t| t.parse().map_err(|_| "not an IP address".to_owned()),
        )?;
        let port_raw = match (
            &a.port,
            layers.env.get("LAZYCACHE_PORT"),
            layers.env.get("PORT"),
        ) {
            (None, None, Some(cloud_run)) => Some(Raw {
                text: cloud_run.clone(),
                from: "PORT".into(),
            }),
            _ => layers.one("port", a.port.as_ref())?,
        };
        let port = parse_with(port_raw, 8080u16, |t| {
            t.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| "not a port number (1-65535)".to_owned())
        })?;
        let mirrors = match layers.many("mirror", &a.mirror)? {
            None => Vec::new(),
            Some((items, from)) => items
                .iter()
                .map(|item| {
                    item.parse::<MirrorSpec>().map_err(|e| {
                        let shown = redact_url_text(item);
                        anyhow!("invalid value {shown:?} for {from}: {e}")
                    })
                })
                .collect::<Result<_>>()?,
        };
        let image_store = layers.one("image-store", a.image_store.as_ref())?;
        let image_store = parse_with(image_store, None, |t| match t {
            "none" | "local" | "google" => Ok(Some(t.to_owned())),
            _ => Err("must be none, local or google".to_owned()),
        })?;
        let image_store_root = layers.one("image-store-root", a.image_store_root.as_ref())?;
        let image_store_bucket = layers.one("image-store-bucket", a.image_store_bucket.as_ref())?;
        let default_cache_dir = match (image_store.as_deref(), &image_store_root) {
            (Some("none"), _) => None,
            (_, Some(root)) => Some(PathBuf::from(root.text.trim())),
            _ => Some(match layers.env.get("XDG_CACHE_HOME") {
                Some(xdg) if !xdg.is_empty() => PathBuf::from(xdg).join("lazycache"),
                _ => PathBuf::from("/var/cache/lazycache"),
            }),
        };
        let cache_dir = match layers.one("cache-dir", a.cache_dir.as_ref())? {
            Some(raw) if raw.text.trim().is_empty() => None,
            Some(raw) => Some(PathBuf::from(raw.text.trim())),
            None => default_cache_dir,
        };
        let default_object_store = match (image_store.as_deref(), &image_store_bucket) {
            (Some("none"), _) => None,
            (_, Some(bucket)) => Some(format!("gs://{}", bucket.text.trim())),
            _ => None,
        };
        let object_store = match layers.one("object-store", a.object_store.as_ref())? {
            Some(raw) if raw.text.trim().is_empty() => None,
            Some(raw) => {
                let text = raw.text.trim().to_owned();
                let scheme = text.split_once("://").map(|(s, _)| s);
                if !matches!(scheme, Some("gs" | "s3" | "file")) {
                    return Err(invalid(&raw, "must be a gs://, s3:// or file:// URL"));
                }
                Some(text)
            }
            None => default_object_store,
        };
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            bind,
            port,
            mirrors,
            cache_dir,
            disk_cache_size: parse_with(
                layers.one("disk-cache-size", a.disk_cache_size.as_ref())?,
                10 << 30,
                size,
            )?,
            memory_cache_size: parse_with(
                layers.one("memory-cache-size", a.memory_cache_size.as_ref())?,
                512 << 20,
                size,
            )?,
            object_store,
            allow_raw_output: parse_with(
                layers.one("allow-raw-output", a.allow_raw_output.as_ref())?,
                false,
                boolean,
            )?,
            public: parse_with(layers.one("public", a.public.as_ref())?, false, boolean)?,
            file_overlay: layers
                .one("file-overlay", a.file_overlay.as_ref())?
                .map(|raw| raw.text.trim().to_owned())
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            file_overlay_flatten: parse_with(
                layers.one("file-overlay-flatten", a.file_overlay_flatten.as_ref())?,
                false,
                boolean,
            )?,
            max_concurrent_decodes: parse_with(
                layers.one("max-concurrent-decodes", a.max_concurrent_decodes.as_ref())?,
                cpus,
                positive,
            )?,
            decode_queue_timeout: parse_with(
                layers.one("decode-queue-timeout", a.decode_queue_timeout.as_ref())?,
                Duration::from_secs(10),
                duration,
            )?,
            listing_ttl: parse_with(
                layers.one("listing-ttl", a.listing_ttl.as_ref())?,
                Duration::from_secs(300),
                duration,
            )?,
            request_timeout: parse_with(
                layers.one("request-timeout", a.request_timeout.as_ref())?,
                Duration::from_secs(60),
                duration,
            )?,
            origin_timeout: parse_with(
                layers.one("origin-timeout", a.origin_timeout.as_ref())?,
                Duration::from_secs(30),
                duration,
            )?,
            shutdown_delay: parse_with(
                layers.one("shutdown-delay", a.shutdown_delay.as_ref())?,
                Duration::ZERO,
                duration,
            )?,
            movie_extensions: match layers.one("movie-extensions", a.movie_extensions.as_ref())? {
                Some(raw) => {
                    let list: Vec<String> = split_list(&raw.text)
                        .into_iter()
                        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                        .collect();
                    if list.is_empty() {
                        return Err(invalid(&raw, "names no extension"));
                    }
                    list
                }
                None => lazycache_http::options::DEFAULT_MOVIE_EXTENSIONS
                    .iter()
                    .map(|e| (*e).to_owned())
                    .collect(),
            },
            api_keys: api_keys(&layers, &a.api_key)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn with_file(text: &str) -> (tempfile::NamedTempFile, ServeArgs) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let args = ServeArgs {
            config: Some(file.path().to_owned()),
            ..ServeArgs::default()
        };
        (file, args)
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let (_file, mut args) = with_file("port = 7000\nlisting-ttl = \"1m\"\npublic = true\n");
        let config = ServeConfig::resolve_with(&args, env(&[])).unwrap();
        assert_eq!(config.port, 7000);
        assert_eq!(config.listing_ttl, Duration::from_secs(60));
        assert!(config.public);
        assert_eq!(config.memory_cache_size, 512 << 20);
        let config = ServeConfig::resolve_with(&args, env(&[("LAZYCACHE_PORT", "7001")])).unwrap();
        assert_eq!(config.port, 7001);
        args.port = Some("7002".into());
        let config = ServeConfig::resolve_with(&args, env(&[("LAZYCACHE_PORT", "7001")])).unwrap();
        assert_eq!(config.port, 7002);
    }

    #[test]
    fn cloud_run_port_applies_only_without_flag_or_lazycache_port() {
        let args = ServeArgs {
            config: Some(PathBuf::from("/dev/null")),
            ..ServeArgs::default()
        };
        let port =
            |pairs: &[(&str, &str)]| ServeConfig::resolve_with(&args, env(pairs)).unwrap().port;
        assert_eq!(port(&[]), 8080);
        assert_eq!(port(&[("PORT", "9000")]), 9000);
        assert_eq!(port(&[("PORT", "9000"), ("LAZYCACHE_PORT", "9001")]), 9001);
    }

    #[test]
    fn lists_sizes_and_aliases() {
        let (_file, args) = with_file(
            "mirror = [\"a=file:///tmp/\", \"https://rawdata.oceanobservatories.org/files/\"]\n\
             image-store = \"google\"\nimage-store-bucket = \"frames\"\nimage-store-root = \"/srv/c\"\n\
             disk-cache-size = \"20GiB\"\n",
        );
        let config =
            ServeConfig::resolve_with(&args, env(&[("LAZYCACHE_API_KEY", "k1, k2")])).unwrap();
        assert_eq!(config.mirrors.len(), 2);
        assert_eq!(config.object_store.as_deref(), Some("gs://frames"));
        assert_eq!(config.cache_dir, Some(PathBuf::from("/srv/c")));
        assert_eq!(config.disk_cache_size, 20 << 30);
        assert_eq!(config.api_keys, vec!["k1", "k2"]);
        let config = ServeConfig::resolve_with(
            &args,
            env(&[
                ("LAZYCACHE_IMAGE_STORE", "none"),
                ("LAZYCACHE_MIRROR", "file:///x/,b=file:///y/"),
            ]),
        )
        .unwrap();
        assert_eq!((config.object_store, config.cache_dir), (None, None));
        assert_eq!(config.mirrors.len(), 2);
    }

    #[test]
    fn api_keys_are_trimmed_and_fail_closed() {
        let quiet = ServeArgs {
            config: Some(PathBuf::from("/dev/null")),
            api_key: vec![" k1 ".into()],
            ..ServeArgs::default()
        };
        let config = ServeConfig::resolve_with(&quiet, env(&[])).unwrap();
        assert_eq!(config.api_keys, vec!["k1"]);
        let (_file, from_file) = with_file("api-key = [\"from-file\"]\n");
        let config = ServeConfig::resolve_with(&from_file, env(&[])).unwrap();
        assert_eq!(config.api_keys, vec!["from-file"]);
        let refused = |args: &ServeArgs, pairs: &[(&str, &str)], names: &str| {
            let error = ServeConfig::resolve_with(args, env(pairs))
                .unwrap_err()
                .to_string();
            assert!(error.contains(names) && !error.contains('\n'), "{error}");
        };
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
        let blank_flag = ServeArgs {
            api_key: vec!["k1".into(), "  ".into()],
            ..quiet.clone()
        };
        refused(&blank_flag, &[], "--api-key");
        let (_file, blank_in_file) = with_file("api-key = \"\"\n");
        refused(&blank_in_file, &[], "api-key in");
    }

    #[test]
    fn a_bad_mirror_is_refused_without_its_password() {
        let args = ServeArgs {
            config: Some(PathBuf::from("/dev/null")),
            mirror: vec!["http://user:hunter2@h.example/?q".into()],
            ..ServeArgs::default()
        };
        let error = ServeConfig::resolve_with(&args, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--mirror") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_value_is_one_line_naming_its_source() {
        let (_file, args) = with_file("memory-cache-size = \"lots\"\n");
        let quiet = ServeArgs {
            config: Some(PathBuf::from("/dev/null")),
            ..ServeArgs::default()
        };
        let error = ServeConfig::resolve_with(&args, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("memory-cache-size in ") && error.contains("lots"),
            "{error}"
        );
        assert!(!error.contains('\n'));
        let error =
            ServeConfig::resolve_with(&quiet, env(&[("LAZYCACHE_MAX_CONCURRENT_DECODES", "0")]))
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("LAZYCACHE_MAX_CONCURRENT_DECODES"),
            "{error}"
        );
        let (_file, args) = with_file("colour = \"blue\"\n");
        let error = ServeConfig::resolve_with(&args, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown option \"colour\""), "{error}");
    }
}
