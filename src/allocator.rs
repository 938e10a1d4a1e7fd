//! The process's malloc settings, applied before any thread starts.

/// glibc's malloc gives threads that allocate at once arenas of their own, up to 8 per core, and
/// memory freed in an arena is reused only by that arena. Frames are decoded and encoded on the
/// blocking pool's threads and cached and sent from the I/O runtime's, so under mixed load the
/// free memory spreads over many arenas and the resident size creeps up. In the same soak run
/// twice (BENCHMARKS.md, Soak), two arenas held 481–494 MiB after the warm-up where the default
/// grew from 650 to 772 MiB, at the same request rate. A setting made in the environment
/// (`MALLOC_ARENA_MAX`, `GLIBC_TUNABLES`) is left to win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    const ARENAS: libc::c_int = 2;
    let set_by_environment = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES")
            .is_some_and(|t| t.to_string_lossy().contains("glibc.malloc.arena_max"));
    if !set_by_environment {
        // SAFETY: mallopt only changes a malloc tuning value; it is called before the runtime's
        // threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Other allocators need no setting.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}
