//! Hardening I (issue 10) end to end, against the real binary and real nginx: a mirror's
//! credentials appear nowhere, API keys fail closed, hidden files and server paths stay hidden,
//! `If-None-Match` never stands in for an error, and unservable movies are remembered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lazycache_testkit::nginx::Nginx;
use support::{Server, client, fixtures_dir, header, nginx_prefix, raw_get_status, runtime};

const PRORES: &str = "prores_hq_1080p.mov";
const USER: &str = "camhd-reader";
const PASSWORD: &str = "pw-9f8e7d6c5b4a";

/// Every file under `dir`, read whole (cache entries are small in these tests).
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn count_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn a_mirrors_credentials_appear_nowhere() {
    let nginx = Nginx::serve(&fixtures_dir());
    let port = nginx.addr.port();
    let mirror = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/");
    // A second mirror with credentials whose origin is down: its errors must not show them.
    let dead_port = lazycache_testkit::procs::free_port();
    let dead = format!("down=http://{USER}:{PASSWORD}@127.0.0.1:{dead_port}/");
    let cache_dir = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &[
            "--mirror",
            &mirror,
            "--mirror",
            &dead,
            "--cache-dir",
            cache_dir.path().to_str().unwrap(),
            "--object-store",
            &format!("file://{}", store_dir.path().display()),
            "--allow-raw-output",
        ],
        &[],
    );
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    let mut bodies = Vec::new();
    rt.block_on(async {
        for path in [
            "/".to_owned(),
            prefix.clone(),
            format!("{prefix}{PRORES}"),
            format!("{prefix}{PRORES}/frame/3.jpg"),
            format!("{prefix}{PRORES}/frame/99999.jpg"),
            format!("{prefix}missing.mov"),
            format!("{prefix}missing.mov/frame/1.png"),
            format!("{prefix}bad_text.mov"),
            format!("{prefix}notes.txt"),
            "/v1/down/".to_owned(),
            format!("/v1/down/{PRORES}"),
            format!("/v1/down/{PRORES}/frame/1.png"),
            "/metrics".to_owned(),
            "/info".to_owned(),
        ] {
            let response = c.get(server.url(&path)).send().await.unwrap();
            let status = response.status().as_u16();
            let location = header(&response, "location");
            let body = response.text().await.unwrap();
            bodies.push((path, status, format!("{location}\n{body}")));
        }
    });
    let statuses: Vec<u16> = bodies.iter().map(|(_, status, _)| *status).collect();
    assert_eq!(
        statuses[2], 200,
        "metadata through the mirror with credentials"
    );
    assert_eq!(
        statuses[3], 200,
        "a frame through the mirror with credentials"
    );
    assert!(statuses[10] >= 500, "the dead mirror fails: {statuses:?}");
    let root: serde_json::Value = serde_json::from_str(bodies[0].2.trim()).unwrap();
    assert!(
        root.get(format!("http://127.0.0.1:{port}/")).is_some(),
        "the root map names the mirror without credentials: {root}"
    );
    for (path, status, body) in &bodies {
        for secret in [PASSWORD, USER] {
            assert!(
                !body.contains(secret),
                "{path} ({status}) shows {secret}: {body}"
            );
        }
    }
    // The write-behind is flushed at SIGTERM; then every tier is on disk to search.
    let log = server.log();
    assert!(server.terminate().success());
    for secret in [PASSWORD, USER] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
        for dir in [cache_dir.path(), store_dir.path()] {
            assert!(
                files_containing(dir, secret).is_empty(),
                "cache entries under {} hold {secret}",
                dir.display()
            );
        }
    }
    assert!(
        count_files(cache_dir.path()) > 0 && count_files(store_dir.path()) > 0,
        "the tiers were written, so the search above saw entries"
    );
}

#[test]
fn api_keys_fail_closed_and_guard_every_private_route() {
    let lazycache = env!("CARGO_BIN_EXE_lazycache");
    let refused = |args: &[&str], envs: &[(&str, &str)], names: &str| {
        let port = lazycache_testkit::procs::free_port().to_string();
        let mut child = Command::new(lazycache)
            .args(["serve", "--bind", "127.0.0.1", "--port", &port, "--config"])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?} {envs:?} started a server instead of refusing");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} {envs:?} exited 0");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].contains(names), "{names} not named: {stderr}");
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "api-key = [\"from-the-file\"]\n").unwrap();
    let config = file.path().to_str().unwrap();
    refused(&["/dev/null", "--api-key", ""], &[], "--api-key");
    refused(&["/dev/null", "--api-key", "   "], &[], "--api-key");
    refused(&[config], &[("LAZYCACHE_API_KEY", "")], "LAZYCACHE_API_KEY");
    refused(
        &[config],
        &[("LAZYCACHE_API_KEY", "k1,,k2")],
        "LAZYCACHE_API_KEY",
    );
    let blank_in_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(blank_in_file.path(), "api-key = [\"ok\", \" \"]\n").unwrap();
    refused(&[blank_in_file.path().to_str().unwrap()], &[], "api-key in");

    let local = support::local_mirror();
    let server = Server::start(&["--mirror", &local, "--api-key", "  k-one "], &[]);
    let log = server.log();
    assert!(log.contains("API keys are on"), "{log}");
    assert!(!log.contains("k-one"), "the key is logged:\n{log}");
    let rt = runtime();
    let c = client();
    rt.block_on(async {
        let status = |path: &'static str, key: Option<&'static str>| {
            let mut request = c.get(server.url(path));
            if let Some(key) = key {
                request = request.header("x-api-key", key);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        for path in ["/v1/local/", "/metrics", "/info"] {
            assert_eq!(status(path, None).await, 401, "{path} without a key");
            assert_eq!(
                status(path, Some("")).await,
                401,
                "{path} with an empty key"
            );
            assert_eq!(
                status(path, Some("k-on")).await,
                401,
                "{path} with a prefix"
            );
            assert_eq!(
                status(path, Some("k-one")).await,
                200,
                "{path} with the key"
            );
        }
        for open in ["/", "/healthz", "/readyz", "/_ah/health"] {
            assert_eq!(status(open, None).await, 200, "{open} stays open");
        }
    });
    let open = Server::start(&["--mirror", &local], &[]);
    assert!(open.log().contains("API keys are off"), "{}", open.log());
}

#[test]
fn hidden_files_and_server_paths_stay_hidden() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    std::fs::write(dir.join(".env"), "SECRET=1\n").unwrap();
    std::fs::create_dir(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/config"), "[core]\n").unwrap();
    std::fs::create_dir(dir.join("movies")).unwrap();
    std::fs::write(dir.join("movies/.hidden.mov"), "x").unwrap();
    std::fs::copy(fixtures_dir().join(PRORES), dir.join("movies").join(PRORES)).unwrap();
    std::fs::write(
        dir.join("page.html"),
        "<script>alert(document.cookie)</script>",
    )
    .unwrap();
    let mirror = format!("m=file://{}/", dir.display());
    let server = Server::start(&["--mirror", &mirror, "--cache-dir", ""], &[]);
    let rt = runtime();
    let c = client();
    let server_path = dir.display().to_string();
    rt.block_on(async {
        let get = |path: String, if_none_match: Option<&'static str>| {
            let mut request = c.get(server.url(&path));
            if let Some(tag) = if_none_match {
                request = request.header("if-none-match", tag);
            }
            async move { request.send().await.unwrap() }
        };
        let json_of = |path: &'static str| {
            let response = get(path.into(), None);
            async move {
                let body = response.await.bytes().await.unwrap();
                serde_json::from_slice::<serde_json::Value>(&body).unwrap()
            }
        };
        let listing = json_of("/v1/m/").await;
        assert_eq!(
            listing["Files"],
            serde_json::json!(["page.html"]),
            "{listing}"
        );
        assert_eq!(listing["Directories"], serde_json::json!(["movies"]));
        let movies = json_of("/v1/m/movies/").await;
        assert_eq!(movies["Files"], serde_json::json!([PRORES]), "{movies}");
        for hidden in [
            "/v1/m/.env",
            "/v1/m/%2Eenv",
            "/v1/m/.git/config",
            "/v1/m/.git/",
            "/v1/m/movies/.hidden.mov",
            "/v1/m/movies/.hidden.mov/frame/1.png",
        ] {
            let response = get(hidden.into(), None).await;
            assert_eq!(response.status(), 404, "{hidden}");
            let body = response.text().await.unwrap();
            assert!(!body.contains("SECRET"), "{hidden}: {body}");
        }
        for missing in [
            "/v1/m/nothing.txt",
            "/v1/m/movies/nothing.mov",
            "/v1/m/movies/nothing.mov/frame/1.png",
            "/v1/m/nodir/",
        ] {
            let response = get(missing.into(), None).await;
            assert_eq!(response.status(), 404, "{missing}");
            let body = response.text().await.unwrap();
            assert!(
                !body.contains(&server_path),
                "{missing} shows a server path: {body}"
            );
        }
        let page = get("/v1/m/page.html".into(), None).await;
        assert_eq!(page.status(), 200);
        assert_eq!(header(&page, "x-content-type-options"), "nosniff");
        assert_eq!(header(&page, "content-security-policy"), "sandbox");

        // If-None-Match answers 304 only where the answer would otherwise be 200.
        let movie = format!("/v1/m/movies/{PRORES}");
        let past_end = get(format!("{movie}/frame/99999.png"), Some("*")).await;
        assert_eq!(past_end.status(), 400, "a frame past the end, with *");
        let zero = get(format!("{movie}/frame/0.png"), Some("*")).await;
        assert_eq!(zero.status(), 400);
        let shown = get(format!("{movie}/frame/2.png"), None).await;
        let etag = header(&shown, "etag");
        let same = c
            .get(server.url(&format!("{movie}/frame/2.png")))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(same.status(), 304);
        assert_eq!(
            get(format!("{movie}/frame/2.png"), Some("*"))
                .await
                .status(),
            304
        );
    });
    // Raw paths, as a client that does not normalise would send them.
    for raw in ["/v1/m/movies/../.env", "/v1/m/./.env", "/v1/m/.git/../.env"] {
        assert_eq!(raw_get_status(server.addr, raw), 404, "{raw}");
    }
}

#[test]
fn a_movie_that_cannot_be_served_is_remembered() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = Server::start(
        &[
            "--mirror",
            &support::nginx_mirror(&nginx),
            "--cache-dir",
            "",
            "--listing-ttl",
            "10m",
        ],
        &[],
    );
    let prefix = nginx_prefix(&nginx);
    let rt = runtime();
    let c = client();
    for bad in [
        "bad_text.mov",
        "bad_audio_only.mp4",
        "bad_truncated_no_moov.mov",
    ] {
        let ask = |path: String| {
            let c = c.clone();
            let url = server.url(&path);
            async move { c.get(url).send().await.unwrap() }
        };
        let index_builds = || {
            let text = rt
                .block_on(async { ask("/metrics".into()).await.text().await })
                .unwrap();
            support::metric(&text, "lazycache_index_seconds_count")
        };
        let builds_before = index_builds();
        let first = rt.block_on(ask(format!("{prefix}{bad}")));
        assert_eq!(first.status(), 415, "{bad}");
        let said = rt.block_on(first.text()).unwrap();
        let read_once = nginx.gets_of(&format!("/{bad}"));
        assert!(read_once.0 > 0, "{bad} was read once");
        for again in [
            format!("{prefix}{bad}"),
            format!("{prefix}{bad}/frame/1.jpg"),
            format!("{prefix}{bad}/time/0.5.png"),
            format!("{prefix}{bad}"),
        ] {
            let response = rt.block_on(ask(again.clone()));
            assert_eq!(response.status(), 415, "{again}");
            let body = rt.block_on(response.text()).unwrap();
            let error = |text: &str| {
                serde_json::from_str::<serde_json::Value>(text).unwrap()["Error"].clone()
            };
            assert_eq!(error(&body), error(&said), "the same words, remembered");
        }
        assert_eq!(
            nginx.gets_of(&format!("/{bad}")),
            read_once,
            "asking again about {bad} read nothing more from the origin"
        );
        // The range cache could hide re-reads of a small file from nginx; the index builds
        // show that the movie was not even opened again.
        assert_eq!(
            index_builds() - builds_before,
            1.0,
            "{bad} was opened once, however often it was asked for"
        );
    }
}
