//! A shared bucket is not trusted blindly: objects planted in fake-gcs-server (and in a file://
//! store) by another writer — with a matching CRC but another content type, larger than their
//! kind's bound, with a wrong CRC, unsigned or signed with another key — are never served as
//! they say, and a damaged entry is a miss that leaves the shared object in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{FRAME_BOUND, bounded, fake_gcs, file_store_options, frame_key, gcs_options};
use lazycache_cache::{
    CacheKey, CacheMetrics, CachedValue, ObjectStoreOptions, ObjectStoreTier, SigningKey, Tier,
    TierKind,
};
use object_store::{Attribute, AttributeValue, Attributes, PutOptions, PutPayload};

fn tier(options: &ObjectStoreOptions) -> ObjectStoreTier {
    let metrics = CacheMetrics::register(&prometheus::Registry::new())
        .unwrap()
        .tier(TierKind::ObjectStore)
        .clone();
    ObjectStoreTier::connect(options, "--object-store", metrics).unwrap()
}

fn signed_list(mut options: ObjectStoreOptions, list: &str) -> ObjectStoreOptions {
    options.signing_key = Some(SigningKey::from_list(list).unwrap());
    options
}

fn signed(mut options: ObjectStoreOptions, secret: &str) -> ObjectStoreOptions {
    options.signing_key = Some(SigningKey::new(secret.as_bytes()).unwrap());
    options
}

/// `frame_key(n)` as a writer that declares nothing about the value would name it (same object).
fn bare_key(n: u64) -> CacheKey {
    let expected = frame_key(n);
    let bare = CacheKey::new(
        "frame",
        &[
            ("mirror", "test-mirror"),
            ("path", "dir/movie.mov"),
            ("validator", "\"etag-1\""),
            ("frame", &n.to_string()),
            ("format", "png"),
        ],
    );
    assert_eq!(bare.digest(), expected.digest());
    bare
}

async fn object_status(gcs_url: &str, bucket: &str, key: &CacheKey) -> (u16, String) {
    let url = format!(
        "{gcs_url}/{bucket}/lazycache/frame/{}",
        key.digest().to_hex()
    );
    let response = bounded(reqwest::get(&url)).await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), content_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_type_comes_from_the_key_never_from_the_object() {
    let gcs = fake_gcs("planted-type");
    let options = gcs_options(&gcs.url, "planted-type");
    let planted = tier(&options);
    // Another writer stores a page, with a correct CRC, where a PNG frame belongs.
    let page = CachedValue::new("text/html", &b"<script>alert(1)</script>"[..]);
    bounded(planted.put(&bare_key(1), &page)).await.unwrap();
    assert_eq!(
        object_status(&gcs.url, "planted-type", &bare_key(1)).await,
        (200, "text/html".to_owned())
    );
    let reader = tier(&options);
    let got = bounded(reader.get(&frame_key(1))).await.unwrap().unwrap();
    assert_eq!(got.content_type(), "image/png");
    assert_eq!(got.bytes(), page.bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_larger_than_its_kinds_bound_is_ignored() {
    let gcs = fake_gcs("planted-size");
    let options = gcs_options(&gcs.url, "planted-size");
    let huge = CachedValue::new("image/png", vec![7u8; FRAME_BOUND as usize + 1]);
    bounded(tier(&options).put(&bare_key(2), &huge))
        .await
        .unwrap();
    let reader = tier(&options);
    assert_eq!(bounded(reader.get(&frame_key(2))).await.unwrap(), None);
    assert_eq!(reader_metric(&reader, |m| m.oversized_entries.get()), 1);
    // Still there for whoever may read it.
    assert_eq!(
        object_status(&gcs.url, "planted-size", &bare_key(2))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crc_mismatch_is_a_counted_miss_and_the_shared_object_stays() {
    let gcs = fake_gcs("planted-crc");
    let options = gcs_options(&gcs.url, "planted-crc");
    // Plant with object_store directly: the bytes and a CRC of other bytes.
    let store = lazycache_store::open(
        &url::Url::parse("gs://planted-crc/lazycache").unwrap(),
        &lazycache_store::ClientSettings::new(
            std::time::Duration::from_secs(3),
            std::time::Duration::from_secs(3),
            object_store::RetryConfig::default(),
        )
        .with_gcs_emulator(Some(&gcs.url)),
    )
    .unwrap();
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, AttributeValue::from("image/png"));
    attributes.insert(
        Attribute::Metadata("lazycache-crc32".into()),
        AttributeValue::from("00000000"),
    );
    let path = store
        .location
        .prefix()
        .child("frame")
        .child(frame_key(3).digest().to_hex());
    let put = PutOptions {
        attributes,
        ..PutOptions::default()
    };
    bounded(
        store
            .store
            .put_opts(&path, PutPayload::from(vec![1u8; 1000]), put),
    )
    .await
    .unwrap();
    let reader = tier(&options);
    assert_eq!(bounded(reader.get(&frame_key(3))).await.unwrap(), None);
    assert_eq!(reader_metric(&reader, |m| m.corrupt_entries.get()), 1);
    assert_eq!(
        object_status(&gcs.url, "planted-crc", &frame_key(3))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_signing_key_only_entries_signed_with_it_are_hits() {
    let gcs = fake_gcs("signed");
    let dir = tempfile::tempdir().unwrap();
    for options in [
        gcs_options(&gcs.url, "signed"),
        file_store_options(&dir.path().join("bucket")),
    ] {
        let value = common::value(4, 4_000);
        let writer = tier(&signed(options.clone(), "key-one"));
        bounded(writer.put(&frame_key(4), &value)).await.unwrap();
        let same_key = tier(&signed(options.clone(), "key-one"));
        assert_eq!(
            bounded(same_key.get(&frame_key(4))).await.unwrap(),
            Some(value.clone()),
            "{}",
            options.url
        );
        let other_key = tier(&signed(options.clone(), "key-two"));
        assert_eq!(bounded(other_key.get(&frame_key(4))).await.unwrap(), None);
        assert_eq!(reader_metric(&other_key, |m| m.corrupt_entries.get()), 1);
        // Unsigned entries (a writer without the key, or planted) are misses too.
        bounded(tier(&options).put(&frame_key(5), &value))
            .await
            .unwrap();
        assert_eq!(bounded(same_key.get(&frame_key(5))).await.unwrap(), None);
        // A rotation: "new,old" signs with the new secret and still accepts the old one's.
        let rotating = tier(&signed_list(options.clone(), "key-new,key-one"));
        assert_eq!(
            bounded(rotating.get(&frame_key(4))).await.unwrap(),
            Some(value.clone())
        );
        bounded(rotating.put(&frame_key(6), &value)).await.unwrap();
        let new_only = tier(&signed(options.clone(), "key-new"));
        assert_eq!(
            bounded(new_only.get(&frame_key(6))).await.unwrap(),
            Some(value.clone())
        );
        // The signed entry is still there for its signers.
        assert_eq!(
            bounded(same_key.get(&frame_key(4))).await.unwrap(),
            Some(value)
        );
    }
    assert!(SigningKey::new(b"").is_err());
    assert!(SigningKey::from_list("new,,old").is_err());
    assert_eq!(
        format!("{:?}", SigningKey::new(b"s3cret").unwrap()),
        "SigningKey(<redacted>)"
    );
}

fn reader_metric(
    tier: &ObjectStoreTier,
    read: impl Fn(&lazycache_cache::TierMetrics) -> u64,
) -> u64 {
    read(tier.metrics())
}
