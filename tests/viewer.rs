//! The viewer (SPEC §3 Viewer) in a real browser: Debian's headless Chromium, driven over
//! WebDriver by chromedriver, loads `/ui/` from a running server with an API key on an nginx
//! mirror, browses to a movie, and steps and scrubs its frames; the image shown must be the
//! frame route's own bytes. A screenshot is written for people to look at. Plus the page's
//! HTTP contract: the key (header or `?key=`), the redirect, CSP, ETag and 304.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use lazycache_testkit::nginx::Nginx;
use lazycache_testkit::procs::{ChildGuard, free_port, require_tool, wait_for_port};
use serde_json::json;
use support::{Server, client, fixtures_dir, nginx_mirror, nginx_prefix, runtime};

/// 640×360 at 25 fps, 150 frames, long GOP: stepping exercises warm decoding too.
const MOVIE: &str = "h264_longgop_faststart.mp4";
/// Has characters that must be escaped in a query and in HTML.
const KEY: &str = "viewer key/+&\"<";
/// How long the browser may take to show something in a debug build on a busy 2-core machine.
const BROWSER_WAIT: Duration = Duration::from_secs(90);

fn encoded_key() -> String {
    percent_encoding::utf8_percent_encode(KEY, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn server(nginx: &Nginx) -> Server {
    Server::start(
        &[
            "--mirror",
            &nginx_mirror(nginx),
            "--cache-dir",
            "",
            "--api-key",
            KEY,
        ],
        &[],
    )
}

#[test]
fn the_page_needs_the_key_in_a_header_or_the_query_and_loads_nothing_from_elsewhere() {
    let nginx = Nginx::serve(&fixtures_dir());
    let server = server(&nginx);
    runtime().block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for refused in ["/ui/", "/ui/app.js", "/ui/?key=wrong", "/ui/style.css?key="] {
            let response = http.get(server.url(refused)).send().await.unwrap();
            assert_eq!(response.status(), 401, "{refused}");
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert!(
                body["Error"].as_str().unwrap().contains("API key"),
                "{body}"
            );
        }
        // The key in the query opens only the viewer, not the API.
        let api = format!("{}?key={}", nginx_prefix(&nginx), encoded_key());
        let response = http.get(server.url(&api)).send().await.unwrap();
        assert_eq!(response.status(), 401);

        let moved = http
            .get(server.url(&format!("/ui?key={}", encoded_key())))
            .send()
            .await
            .unwrap();
        assert_eq!(moved.status(), 301);
        assert_eq!(
            moved.headers()["location"],
            format!("/ui/?key={}", encoded_key()).as_str()
        );

        let page = http
            .get(server.url(&format!("/ui/?key={}", encoded_key())))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains(&format!("src=\"app.js?key={}\"", encoded_key())));
        assert!(!html.contains(KEY), "the raw key must not reach the HTML");
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script>") && !html.contains(" style="));

        let script = http
            .get(server.url("/ui/app.js"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(script.status(), 200);
        assert!(
            script.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let etag = script.headers()["etag"].clone();
        let again = http
            .get(server.url("/ui/app.js"))
            .header("x-api-key", KEY)
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        let missing = http
            .get(server.url("/ui/../v1/"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_ne!(missing.status(), 200);
    });
}

#[test]
fn a_browser_opens_a_movie_steps_and_scrubs_and_shows_the_frames_the_api_gives() {
    let chromium = require_tool("chromium", "apt-get install chromium (scripts/test does)");
    let chromedriver = require_tool(
        "chromedriver",
        "apt-get install chromium-driver (scripts/test does)",
    );
    let nginx = Nginx::serve(&fixtures_dir());
    let server = server(&nginx);
    let port = free_port();
    let driver = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let _driver = ChildGuard::new("chromedriver", driver);
    let driver_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_for_port(driver_addr, Duration::from_secs(30), "chromedriver");

    runtime().block_on(async {
        let browser = connect(&format!("http://{driver_addr}"), &chromium).await;
        let outcome = walk_the_viewer(&browser, &server, &nginx).await;
        let screenshot = browser.screenshot().await;
        let _ = browser.close().await;
        if let Ok(png) = screenshot {
            let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer.png");
            std::fs::write(&path, png).unwrap();
            eprintln!("viewer screenshot: {}", path.display());
        }
        outcome.unwrap();
    });
}

async fn connect(driver: &str, chromium: &std::path::Path) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver)
        .await
        .expect("a WebDriver session in headless Chromium")
}

async fn find(browser: &Client, css: &str) -> Result<Element, String> {
    browser
        .wait()
        .at_most(BROWSER_WAIT)
        .for_element(Locator::Css(css))
        .await
        .map_err(|error| format!("waiting for {css}: {error}"))
}

/// The bytes behind the `<img id=frame>` on screen (a blob: URL only the page can read).
async fn shown_bytes(browser: &Client) -> Result<Vec<u8>, String> {
    let script = "const done = arguments[arguments.length - 1];
        fetch(document.getElementById('frame').src)
          .then((r) => r.arrayBuffer())
          .then((b) => done(Array.from(new Uint8Array(b))))
          .catch((e) => done(String(e)));";
    let value = browser
        .execute_async(script, vec![])
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

async fn api_bytes(server: &Server, path: &str) -> Vec<u8> {
    let response = client()
        .get(server.url(path))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

async fn walk_the_viewer(browser: &Client, server: &Server, nginx: &Nginx) -> Result<(), String> {
    let error = |e: fantoccini::error::CmdError| e.to_string();
    browser
        .goto(&server.url(&format!("/ui?key={}", encoded_key())))
        .await
        .map_err(error)?;
    // The mirrors, then the mirror's root directory, then the movie.
    find(browser, "#entries a")
        .await?
        .click()
        .await
        .map_err(error)?;
    browser
        .wait()
        .at_most(BROWSER_WAIT)
        .for_element(Locator::LinkText(MOVIE))
        .await
        .map_err(|e| format!("waiting for the movie's link: {e}"))?
        .click()
        .await
        .map_err(error)?;
    find(browser, "#frame[data-frame='1']").await?;

    let movie = format!("{}{MOVIE}", nginx_prefix(nginx));
    let metadata = find(browser, "#metadata")
        .await?
        .text()
        .await
        .map_err(error)?;
    if !(metadata.contains("NumFrames") && metadata.contains("150")) {
        return Err(format!("metadata shown: {metadata}"));
    }
    let first = shown_bytes(browser).await?;
    if first != api_bytes(server, &format!("{movie}/frame/1.jpg")).await {
        return Err("frame 1 shown is not the API's frame 1".into());
    }

    // A step with the button, then one with the arrow key.
    find(browser, "#next").await?.click().await.map_err(error)?;
    find(browser, "#frame[data-frame='2']").await?;
    let second = shown_bytes(browser).await?;
    if second == first || second != api_bytes(server, &format!("{movie}/frame/2.jpg")).await {
        return Err("frame 2 shown is not the API's frame 2".into());
    }
    let arrow_right: char = Key::Right.into();
    find(browser, "#slider")
        .await?
        .send_keys(&arrow_right.to_string())
        .await
        .map_err(error)?;
    find(browser, "#frame[data-frame='3']").await?;
    if shown_bytes(browser).await? != api_bytes(server, &format!("{movie}/frame/3.jpg")).await {
        return Err("frame 3 shown is not the API's frame 3".into());
    }
    let url = find(browser, "#frame-url")
        .await?
        .text()
        .await
        .map_err(error)?;
    if url != server.url(&format!("{movie}/frame/3.jpg")) {
        return Err(format!("frame URL shown: {url}"));
    }
    let python = find(browser, "#python")
        .await?
        .text()
        .await
        .map_err(error)?;
    let call = format!(
        "lc.frame(\"{}{MOVIE}\", 3)",
        nginx_prefix(nginx).trim_start_matches("/v1/")
    );
    if !python.contains(&call) || !python.contains("LAZYCACHE_API_KEY") || python.contains(KEY) {
        return Err(format!("Python lines shown: {python}"));
    }

    // Scrubbing shows a sprite tile at once, and the exact frame on release.
    let scrub = "const slider = document.getElementById('slider');
        slider.value = '120';
        slider.dispatchEvent(new Event('input'));
        const tile = document.getElementById('preview-tile');
        return [document.getElementById('preview').hidden, tile.style.backgroundImage];";
    let mut preview = json!([true, ""]);
    for _ in 0..(BROWSER_WAIT.as_millis() / 250) {
        preview = browser.execute(scrub, vec![]).await.map_err(error)?;
        if preview[0] == json!(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if preview[0] != json!(false) || !preview[1].as_str().unwrap_or("").contains("blob:") {
        return Err(format!("no sprite preview while scrubbing: {preview}"));
    }
    browser
        .execute(
            "document.getElementById('slider').dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .map_err(error)?;
    find(browser, "#frame[data-frame='120']").await?;
    if shown_bytes(browser).await? != api_bytes(server, &format!("{movie}/frame/120.jpg")).await {
        return Err("frame 120 shown is not the API's frame 120".into());
    }
    let here = browser.current_url().await.map_err(error)?;
    if !here.as_str().ends_with("frame=120") {
        return Err(format!("the address does not name the frame: {here}"));
    }
    Ok(())
}
