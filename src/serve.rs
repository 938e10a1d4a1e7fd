//! `lazycache serve`: wires mirrors and the three-tier cache into the service and its HTTP
//! front door, and runs it until SIGTERM/SIGINT. The port is bound first: `/readyz` answers
//! "starting" (503) while the caches open, and `/v1` requests wait for them (at most 10 s). At the signal `/readyz` turns 503 (and stays so for
//! `--shutdown-delay` while requests are still served), then the listener closes, in-flight
//! requests finish (≤ 30 s) while new `/v1` requests on open connections get 503, write-behind
//! is flushed, and the process exits 0.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use anyhow::{Context, Result};
use lazycache_cache::{CacheConfig, SettingNames, SigningKey, TieredCache};
use lazycache_decode::Limits;
use lazycache_http::{AppState, HttpOptions};
use lazycache_origin::{HttpConfig, Mirror, OriginConfig, RangeCache, RangeCacheConfig};
use lazycache_service::{Service, ServiceOptions, ServiceParts, WarmSettings};
use prometheus::Registry;
use tokio::runtime::Handle;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::ServeConfig;

/// Longest wait for in-flight requests at shutdown (SPEC §4)...
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// ... then for pending cache writes. Past `--shutdown-delay`, a stop takes at most
/// [`SHUTDOWN_BOUND`]; the systemd units' `TimeoutStopSec` and `docker stop -t` outlast it
/// (`scripts/check_deploy.py` checks them against this figure).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_BOUND: Duration = Duration::from_secs(40);
const _: () =
    assert!(DRAIN_TIMEOUT.as_secs() + FLUSH_TIMEOUT.as_secs() == SHUTDOWN_BOUND.as_secs());

/// Slow clients (slowloris): a request's head must arrive within this, or the connection is
/// closed with 408 ...
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// ... an idle keep-alive connection is closed after this ...
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// ... a closing connection gets this long to go before it is dropped ...
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// ... and each worker holds at most this many connections (excess ones wait in the backlog).
const MAX_CONNECTIONS_PER_WORKER: usize = 4096;

pub fn serve(config: ServeConfig) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus.max(2))
        .thread_name("lazycache-io")
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    runtime.block_on(run(config, cpus))
}

async fn run(config: ServeConfig, cpus: usize) -> Result<()> {
    let mut signals = ShutdownSignals::install();
    let registry = Registry::new();
    let ranges = RangeCache::new(RangeCacheConfig::default());
    let mirrors = open_mirrors(&config, &ranges)?;
    let state = app_state(&config, mirrors, ranges, registry.clone())?;
    let app_state = state.clone();
    // Listening comes first, so that probes see "starting" (503 on /readyz) rather than a
    // refused connection while the cache tiers open (disk rescan, object-store probe).
    let server =
        HttpServer::new(move || App::new().configure(lazycache_http::configure(app_state.clone())))
            .workers(cpus.max(2))
            .disable_signals()
            .shutdown_timeout(DRAIN_TIMEOUT.as_secs())
            .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
            .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
            .keep_alive(KEEP_ALIVE)
            .max_connections(MAX_CONNECTIONS_PER_WORKER)
            .bind((config.bind, config.port))
            .with_context(|| {
                format!(
                    "--port {}: cannot listen on {}:{}",
                    config.port, config.bind, config.port
                )
            })?
            .run();
    let server_handle = server.handle();
    let mut server = std::pin::pin!(server);
    tracing::info!(bind = %config.bind, port = config.port, "listening; opening the caches");
    match config.api_keys.len() {
        0 => tracing::info!("API keys are off: /v1, /metrics, /info and /ui are open to anyone"),
        keys => tracing::info!(keys, "API keys are on for /v1, /metrics, /info and /ui"),
    }
    let cache = tokio::select! {
        result = &mut server => return result.context("the HTTP server failed"),
        cache = open_cache(&config, &registry) => cache?,
        signal = signals.next() => {
            tracing::info!(signal, "stopped while starting");
            let ((), stopped) = tokio::join!(server_handle.stop(true), &mut server);
            return stopped.context("the HTTP server failed while stopping");
        }
    };
    state.start_serving(cache);
    tracing::info!("lazycache is serving");
    tokio::select! {
        result = &mut server => return result.context("the HTTP server failed"),
        signal = signals.next() => tracing::info!(signal, "shutting down: draining requests"),
    }
    state.begin_shutdown();
    if !config.shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.shutdown_delay, "not ready; still serving until the delay ends");
        tokio::select! {
            result = &mut server => return result.context("the HTTP server failed"),
            () = tokio::time::sleep(config.shutdown_delay) => {}
            signal = signals.next() => tracing::info!(signal, "second signal: draining now"),
        }
    }
    state.begin_drain();
    // The server future must keep running for the stop command to be carried out.
    let ((), drained) = tokio::join!(server_handle.stop(true), &mut server);
    drained.context("the HTTP server failed while draining")?;
    if let Some(cache) = state.cache()
        && !cache.flush(FLUSH_TIMEOUT).await
    {
        tracing::warn!("some cache writes were still pending after {FLUSH_TIMEOUT:?}");
    }
    tracing::info!("stopped");
    Ok(())
}

fn open_mirrors(config: &ServeConfig, ranges: &RangeCache) -> Result<Vec<Arc<Mirror>>> {
    let origin_config = OriginConfig {
        http: HttpConfig {
            read_timeout: config.origin_timeout,
            request_timeout: config.origin_timeout * 4,
            ..HttpConfig::default()
        },
        listing_ttl: config.listing_ttl,
        file_overlay: config.file_overlay.clone(),
        file_overlay_flatten: config.file_overlay_flatten,
        origin_concurrency: config.origin_concurrency,
        origin_queue_timeout: config.origin_timeout,
    };
    let mut mirrors = Vec::new();
    for spec in &config.mirrors {
        let mirror = Mirror::open(spec.clone(), &origin_config, ranges.clone()).map_err(|e| {
            anyhow::anyhow!("invalid value {:?} for --mirror: {e}", spec.to_string())
        })?;
        mirrors.push(Arc::new(mirror));
    }
    if mirrors.is_empty() {
        tracing::warn!("no --mirror given: only /, health and /metrics will answer");
    }
    Ok(mirrors)
}

/// Opens the three cache tiers (the slow part of starting: disk rescan, object-store probe).
async fn open_cache(config: &ServeConfig, registry: &Registry) -> Result<TieredCache> {
    let mut cache_config = CacheConfig::from_options(
        config.memory_cache_size,
        config.cache_dir.clone(),
        config.disk_cache_size,
        config.object_store.as_deref(),
    );
    cache_config.compute_timeout = config.request_timeout;
    if let (Some(options), Some(secret)) = (
        cache_config.object_store.as_mut(),
        config.cache_signing_key.as_deref(),
    ) {
        options.signing_key = Some(
            SigningKey::from_list(secret)
                .map_err(|e| anyhow::anyhow!("--cache-signing-key: {e}"))?,
        );
    }
    cache_config.setting_names = SettingNames {
        memory: "--memory-cache-size",
        disk: "--cache-dir",
        object_store: "--object-store",
    };
    TieredCache::open(cache_config, registry)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The service and its HTTP front door, but the cache (handed over once open).
fn app_state(
    config: &ServeConfig,
    mirrors: Vec<Arc<Mirror>>,
    ranges: RangeCache,
    registry: Registry,
) -> Result<AppState> {
    let service = Service::new(ServiceParts {
        mirrors,
        ranges,
        registry: registry.clone(),
        options: ServiceOptions {
            allow_raw_output: config.allow_raw_output,
            max_concurrent_decodes: config.max_concurrent_decodes,
            decode_queue_timeout: config.decode_queue_timeout,
            movie_extensions: config.movie_extensions.clone(),
            listing_ttl: config.listing_ttl,
            warm: WarmSettings {
                max_bytes: config.decoder_state_memory,
                ..WarmSettings::default()
            },
        },
        limits: Limits {
            max_sample_bytes: config.max_sample_size,
            decode_timeout: config.decode_timeout,
            ..Limits::default()
        },
        io: Handle::current(),
    })
    .context("cannot register metrics")?;
    let options = HttpOptions {
        public: config.public,
        api_keys: config.api_keys.clone(),
        request_timeout: config.request_timeout,
        components: vec![("lazycache".into(), env!("CARGO_PKG_VERSION").into())],
    };
    AppState::new(service, registry, options).context("cannot register metrics")
}

/// SIGTERM and SIGINT, caught from the moment this is built: installed before the port is
/// bound, so a signal that arrives while starting is never the default "terminate at once".
struct ShutdownSignals {
    streams: Option<(Signal, Signal)>,
}

impl ShutdownSignals {
    fn install() -> Self {
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => {
                tracing::error!("cannot install signal handlers; stop with SIGKILL");
                None
            }
        };
        Self { streams }
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    async fn next(&mut self) -> &'static str {
        let Some((term, int)) = &mut self.streams else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}
