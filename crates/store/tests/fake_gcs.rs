//! The GCS emulator store against a real fake-gcs-server: uploads through the JSON API with
//! their attributes and preconditions, everything else through object_store. The emulator is
//! given in the settings, so these tests touch no environment variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::TryStreamExt;
use lazycache_store::{ClientSettings, Store, open};
use lazycache_testkit::fake_gcs::FakeGcs;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ObjectStore, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};
use url::Url;

fn settings(emulator: &str) -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        retry: RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        },
        gcs_emulator: None,
    }
    .with_gcs_emulator(Some(emulator))
}

fn emulated(gcs: &FakeGcs, url: &str) -> Store {
    open(&Url::parse(url).unwrap(), &settings(&gcs.url)).unwrap()
}

fn with_attributes(content_type: &'static str, crc: &'static str) -> PutOptions {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, AttributeValue::from(content_type));
    attributes.insert(
        Attribute::Metadata("lazycache-crc32".into()),
        AttributeValue::from(crc),
    );
    PutOptions {
        attributes,
        ..PutOptions::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn uploads_go_through_the_json_api_and_the_rest_through_object_store() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("frames");
    let Store { store, location } = emulated(&gcs, "gs://frames/lazy%20cache/");
    assert_eq!(location.prefix().as_ref(), "lazy cache");
    let path = location.prefix().child("frame").child("a b");

    runtime().block_on(async {
        let body: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let put = store
            .put_opts(
                &path,
                PutPayload::from(body.clone()),
                with_attributes("image/png", "0badf00d"),
            )
            .await
            .unwrap();

        let got = store.get(&path).await.unwrap();
        assert_eq!(
            got.attributes
                .get(&Attribute::ContentType)
                .map(|v| v.as_ref()),
            Some("image/png")
        );
        assert_eq!(
            got.attributes
                .get(&Attribute::Metadata("lazycache-crc32".into()))
                .map(|v| v.as_ref()),
            Some("0badf00d")
        );
        let meta = got.meta.clone();
        assert_eq!(got.bytes().await.unwrap(), body);
        assert_eq!(put.e_tag, meta.e_tag, "put reports the ETag a head sees");
        assert_eq!(put.version, meta.version, "and the generation");
        assert_eq!(
            store.get_range(&path, 256..260).await.unwrap().as_ref(),
            [0, 1, 2, 3]
        );

        // Plain put (object_store's default options) goes through the same upload.
        let plain = location.prefix().child("plain");
        store
            .put(&plain, PutPayload::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(store.head(&plain).await.unwrap().size, 1);

        let listed = store
            .list_with_delimiter(Some(location.prefix()))
            .await
            .unwrap();
        assert_eq!(listed.objects.len(), 1, "{listed:?}");
        assert_eq!(listed.common_prefixes, [location.prefix().child("frame")]);
        let everything: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(everything.len(), 2);

        store.delete(&plain).await.unwrap();
        assert!(matches!(
            store.head(&plain).await,
            Err(object_store::Error::NotFound { .. })
        ));
    });
}

#[test]
fn upload_preconditions_and_refusals_are_object_store_errors() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("frames");
    let Store { store, .. } = emulated(&gcs, "gs://frames");
    let path = Path::from("once");

    runtime().block_on(async {
        let create = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let first = store
            .put_opts(&path, PutPayload::from_static(b"1"), create())
            .await
            .unwrap();
        let again = store
            .put_opts(&path, PutPayload::from_static(b"2"), create())
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );

        let update = |version: Option<String>| PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: None,
                version,
            }),
            ..PutOptions::default()
        };
        let updated = store
            .put_opts(
                &path,
                PutPayload::from_static(b"3"),
                update(first.version.clone()),
            )
            .await
            .unwrap();
        assert_ne!(updated.version, first.version);
        let stale = store
            .put_opts(&path, PutPayload::from_static(b"4"), update(first.version))
            .await;
        assert!(
            matches!(stale, Err(object_store::Error::Precondition { .. })),
            "{stale:?}"
        );
        assert_eq!(store.get(&path).await.unwrap().bytes().await.unwrap(), "3");

        let no_bucket = emulated(&gcs, "gs://no-such-bucket/x");
        let refused = no_bucket
            .store
            .put(&Path::from("x/y"), PutPayload::from_static(b"z"))
            .await;
        assert!(refused.is_err(), "{refused:?}");
    });
}

/// Why the wrapper exists: object_store's own upload is refused by fake-gcs-server. If this
/// starts failing, the emulator learned the XML API's upload and the wrapper can go.
#[test]
fn object_store_alone_cannot_upload_to_the_emulator() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("frames");
    let key = serde_json::json!({
        "gcs_base_url": gcs.url,
        "disable_oauth": true,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
    });
    let bare = object_store::gcp::GoogleCloudStorageBuilder::new()
        .with_service_account_key(key.to_string())
        .with_bucket_name("frames")
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .build()
        .unwrap();
    runtime().block_on(async {
        let refused = bare
            .put(&Path::from("x"), PutPayload::from_static(b"x"))
            .await;
        let refusal = refused.expect_err("fake-gcs-server took object_store's upload");
        assert!(
            refusal.to_string().contains("invalid uploadType"),
            "{refusal}"
        );
    });
}
