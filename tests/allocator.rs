//! The binary's malloc setting (`src/allocator.rs`), seen from outside: under concurrent cold
//! frames the server runs on at most two glibc arenas (the main one and one more), unless the
//! environment asks for more — which also shows that the count below does see arenas.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Server, client, local_mirror, runtime};

/// glibc's arenas other than the main one are heaps reserved 64 MiB-aligned (`HEAP_MAX_SIZE` on
/// 64-bit), of which the part in use is mapped read-write: count those mappings.
fn secondary_arenas(pid: u32) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let anonymous = fields.len() == 5;
            let start = fields
                .first()
                .and_then(|range| range.split('-').next())
                .and_then(|start| u64::from_str_radix(start, 16).ok());
            anonymous
                && fields.get(1) == Some(&"rw-p")
                && start.is_some_and(|start| start % (64 << 20) == 0)
        })
        .count()
}

/// Serves the fixtures with `envs`, asks for 2 × 16 different frames at once, and counts.
fn arenas_under_load(envs: &[(&str, &str)]) -> usize {
    let server = Server::start(&["--mirror", &local_mirror(), "--cache-dir", ""], envs);
    let rt = runtime();
    let c = client();
    for round in 0..2 {
        let requests = (1..=16).map(|n| {
            let url = server.url(&format!(
                "/v1/local/prores_hq_1080p.mov/frame/{}.jpg?width={}",
                n + round * 16,
                200 + n
            ));
            let c = c.clone();
            async move { c.get(url).send().await.unwrap().status().as_u16() }
        });
        let statuses = rt.block_on(futures::future::join_all(requests));
        assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    }
    let arenas = secondary_arenas(server.pid());
    assert!(server.terminate().success());
    arenas
}

#[test]
fn concurrent_decodes_share_two_malloc_arenas_unless_the_environment_says_otherwise() {
    let set_by_binary = arenas_under_load(&[]);
    assert!(
        set_by_binary <= 1,
        "{set_by_binary} arenas besides the main one"
    );
    let from_environment = arenas_under_load(&[("MALLOC_ARENA_MAX", "8")]);
    assert!(
        from_environment >= 2,
        "MALLOC_ARENA_MAX=8 gave {from_environment} arenas besides the main one: \
         the count does not see them"
    );
}
