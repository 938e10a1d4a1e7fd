//! The fake-gcs-server helper really starts a server and makes buckets.
#[test]
fn fake_gcs_starts_and_creates_a_bucket() {
    let gcs = lazycache_testkit::fake_gcs::FakeGcs::start();
    gcs.create_bucket("lazycache-test");
    let status = lazycache_testkit::procs::http_request(
        gcs.addr,
        "GET",
        "/storage/v1/b/lazycache-test",
        None,
    );
    assert_eq!(status, 200);
}
