//! FFmpeg's process-wide set-up: its log, routed to `tracing` instead of stderr, remembering
//! each thread's last error line so a failure can say what FFmpeg said (e.g. "moov atom not
//! found"); and a cap on any single allocation FFmpeg makes.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Once;

use ffmpeg_next::ffi;

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The largest single block FFmpeg may allocate. A demuxer that sizes a table by a count the file
/// declares (MXF's IndexDuration: 24 bytes of index entry per declared frame) then fails with
/// ENOMEM instead of taking gigabytes; the largest legitimate block is a decoded plane — 8K
/// UHD at 16 bits is 71 MB — or an index of a few million samples.
const MAX_FFMPEG_ALLOCATION: usize = 128 << 20;

/// Initialises FFmpeg, caps its allocations and installs the log callback, once per process.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: registering a callback with the signature av_log expects.
        unsafe { ffi::av_log_set_callback(Some(log_callback)) };
        // SAFETY: sets a process-wide limit read by av_malloc; called before any FFmpeg work.
        unsafe { ffi::av_max_alloc(MAX_FFMPEG_ALLOCATION) };
        // A no-op on FFmpeg ≥ 4 beyond setting up network state, which we never use.
        let _ = ffmpeg_next::init();
    });
}

/// Forgets this thread's last FFmpeg error line (call before an operation).
pub fn clear_last_error() {
    LAST_ERROR.with(|e| e.borrow_mut().take());
}

/// This thread's last FFmpeg error line since [`clear_last_error`].
pub fn take_last_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

unsafe extern "C" fn log_callback(
    avcl: *mut c_void,
    level: c_int,
    fmt: *const c_char,
    args: *mut ffi::__va_list_tag,
) {
    if level > ffi::AV_LOG_VERBOSE {
        return;
    }
    let mut line = [0 as c_char; 512];
    let mut print_prefix: c_int = 1;
    // SAFETY: FFmpeg hands us a valid format string and va_list; the buffer size is passed along.
    let written = unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            args,
            line.as_mut_ptr(),
            line.len() as c_int,
            &mut print_prefix,
        )
    };
    if written < 0 {
        return;
    }
    // SAFETY: av_log_format_line2 always NUL-terminates within the buffer.
    let text = unsafe { CStr::from_ptr(line.as_ptr()) }.to_string_lossy();
    let text = text.trim_end();
    if text.is_empty() {
        return;
    }
    if level <= ffi::AV_LOG_ERROR {
        let message = strip_context_prefix(text).to_owned();
        LAST_ERROR.with(|e| *e.borrow_mut() = Some(message));
        tracing::debug!(target: "ffmpeg", "{text}");
    } else if level <= ffi::AV_LOG_WARNING {
        tracing::debug!(target: "ffmpeg", "{text}");
    } else {
        tracing::trace!(target: "ffmpeg", "{text}");
    }
}

/// "[mov,mp4 @ 0x55d…] moov atom not found" → "moov atom not found".
fn strip_context_prefix(line: &str) -> &str {
    match line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    {
        Some((_, message)) => message,
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_context_prefix;

    #[test]
    fn strips_the_context_prefix() {
        assert_eq!(
            strip_context_prefix("[mov,mp4 @ 0x55] moov atom not found"),
            "moov atom not found"
        );
        assert_eq!(strip_context_prefix("plain"), "plain");
    }
}
