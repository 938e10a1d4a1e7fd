//! `STORAGE_EMULATOR_HOST` read as Google's libraries read it, and a `gs://` store built from it
//! alone working against fake-gcs-server. One test in this binary: it sets process environment
//! variables, which no other thread may read meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lazycache_store::{ClientSettings, STORAGE_EMULATOR_HOST, gcs_emulator_from_env, open};
use lazycache_testkit::fake_gcs::FakeGcs;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, RetryConfig};
use url::Url;

fn set(value: Option<&str>) {
    // SAFETY: the only test of this binary changes the environment while no other thread of
    // its own runs (no runtime exists at these points).
    unsafe {
        match value {
            Some(value) => std::env::set_var(STORAGE_EMULATOR_HOST, value),
            None => std::env::remove_var(STORAGE_EMULATOR_HOST),
        }
    }
}

fn settings() -> ClientSettings {
    ClientSettings::new(
        Duration::from_secs(2),
        Duration::from_secs(10),
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        },
    )
}

#[test]
fn storage_emulator_host_selects_the_emulator() {
    set(None);
    assert_eq!(gcs_emulator_from_env(), None);
    assert_eq!(settings().gcs_emulator, None);
    set(Some("   "));
    assert_eq!(settings().gcs_emulator, None, "blank means unset");
    set(Some("http://127.0.0.1:4443/"));
    assert_eq!(
        settings().gcs_emulator.as_deref(),
        Some("http://127.0.0.1:4443")
    );

    let gcs = FakeGcs::start();
    gcs.create_bucket("env");
    // The bare host:port form, as some tools write it.
    set(Some(&gcs.url.replace("http://", "")));
    let settings = settings();
    assert_eq!(settings.gcs_emulator.as_deref(), Some(gcs.url.as_str()));
    let store = open(&Url::parse("gs://env/p").unwrap(), &settings).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let path = store.location.prefix().child("o");
        store
            .store
            .put(&path, PutPayload::from_static(b"emulated"))
            .await
            .unwrap();
        let got = store.store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(got, "emulated");
        assert!(
            store.store.head(&Path::from("p/missing")).await.is_err(),
            "a missing object is an error"
        );
    });
}
