//! One implementation behind both front doors (issue 11): `lazycache frame` and the HTTP frame
//! routes give byte-identical output for the same request in every format, and the same error
//! words for the same bad request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::{Server, client, fixtures_dir, local_mirror, runtime};

const MOVIE: &str = "h264_longgop_faststart.mp4";

/// `lazycache frame MOVIE ARGS`: its stdout bytes, or its one-line error without the prefix.
fn cli_frame(args: &[&str]) -> Result<Vec<u8>, String> {
    let movie = fixtures_dir().join(MOVIE);
    let output = Command::new(env!("CARGO_BIN_EXE_lazycache"))
        .arg("frame")
        .arg(&movie)
        .args(args)
        .output()
        .unwrap();
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    Err(stderr
        .trim_end()
        .trim_start_matches("lazycache: ")
        .to_owned())
}

#[test]
fn cli_and_http_give_the_same_bytes_and_the_same_errors() {
    let server = Server::start(
        &[
            "--mirror",
            &local_mirror(),
            "--cache-dir",
            "",
            "--allow-raw-output",
        ],
        &[],
    );
    let rt = runtime();
    let c = client();
    let http = |path: String| {
        let url = server.url(&format!("/v1/local/{MOVIE}/{path}"));
        rt.block_on(async {
            let response = c.get(url).send().await.unwrap();
            let ok = response.status().is_success();
            let body = response.bytes().await.unwrap().to_vec();
            if ok {
                Ok(body)
            } else {
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                Err(json["Error"].as_str().unwrap().to_owned())
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    // (HTTP path and query, CLI frame/time and options): every format, sizes, fit, crop,
    // quality, and a frame chosen by time.
    let cases: &[(&str, &[&str])] = &[
        ("frame/7.png", &["7"]),
        ("frame/7.jpg?quality=40", &["7", "--quality", "40"]),
        ("frame/8.bmp?width=200", &["8", "--width", "200"]),
        (
            "frame/9.webp?width=120&height=90&fit=contain",
            &["9", "--width", "120", "--height", "90", "--fit", "contain"],
        ),
        (
            "frame/10.rgba?crop=10,20,100,50",
            &["10", "--crop", "10,20,100,50"],
        ),
        (
            "frame/11.npy?width=64&height=64&fit=cover",
            &["11", "--width", "64", "--height", "64", "--fit", "cover"],
        ),
        ("time/2.5.jpg", &["--time", "2.5"]),
        ("time/00:00:01.000.png", &["--time", "00:00:01.000"]),
        (
            "frame/100.png?seek=keyframe",
            &["100", "--seek", "keyframe"],
        ),
    ];
    for (path, args) in cases {
        let ext = path
            .split('?')
            .next()
            .and_then(|p| p.rsplit_once('.'))
            .map(|(_, ext)| ext)
            .unwrap();
        let out = dir.path().join(format!("out.{ext}"));
        let mut cli_args = args.to_vec();
        cli_args.extend(["-o", out.to_str().unwrap()]);
        cli_frame(&cli_args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let from_cli = std::fs::read(&out).unwrap();
        let from_http = http((*path).to_owned()).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!from_cli.is_empty());
        assert!(from_cli == from_http, "{path}: CLI and HTTP bytes differ");
    }

    let bad: &[(&str, &[&str])] = &[
        ("frame/0.png", &["0"]),
        ("frame/99999.png", &["99999"]),
        ("frame/x.png", &["x"]),
        (
            "frame/3.jpg?quality=0",
            &["3", "--quality", "0", "-o", "x.jpg"],
        ),
        ("frame/3.png?width=9000", &["3", "--width", "9000"]),
        ("frame/3.png?width=abc", &["3", "--width", "abc"]),
        ("frame/3.png?seek=near", &["3", "--seek", "near"]),
        (
            "frame/3.png?width=10&height=10&fit=squash",
            &["3", "--width", "10", "--height", "10", "--fit", "squash"],
        ),
        ("frame/3.png?crop=1,2,3", &["3", "--crop", "1,2,3"]),
        ("frame/3.gif", &["3", "-o", "x.gif"]),
        ("time/9999.png", &["--time", "9999"]),
        ("time/1:99.png", &["--time", "1:99"]),
    ];
    for (path, args) in bad {
        let from_http = http((*path).to_owned()).expect_err(path);
        let from_cli = cli_frame(args).expect_err(path);
        assert_eq!(from_cli, from_http, "{path}: different words");
    }
}
