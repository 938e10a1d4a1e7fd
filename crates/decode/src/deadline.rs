//! The wall-clock deadline of the decode (index build or frame) running on this thread, so that a
//! byte source can bound each read by what is left of it: an origin that trickles a byte now and
//! then cannot hold a decode past its deadline, however long its own timeouts are.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The deadline of the decode on this thread, if one is running.
pub fn current() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// The deadline a step of the running decode works to: the decode's own, else (a step run
/// outside `Movie::open`/`decode`) `timeout` from now.
pub(crate) fn or_from_now(timeout: std::time::Duration) -> Instant {
    let own = Instant::now() + timeout;
    current().map_or(own, |running| running.min(own))
}

/// Sets this thread's deadline (never later than one already set) until dropped.
pub(crate) struct Scope {
    previous: Option<Instant>,
}

pub(crate) fn scope(deadline: Instant) -> Scope {
    let previous = current();
    let earliest = previous.map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.with(|cell| cell.set(Some(earliest)));
    Scope { previous }
}

impl Drop for Scope {
    fn drop(&mut self) {
        DEADLINE.with(|cell| cell.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn scopes_nest_to_the_earliest_and_restore() {
        assert_eq!(current(), None);
        let soon = Instant::now() + Duration::from_secs(1);
        let outer = scope(soon);
        {
            let _inner = scope(soon + Duration::from_secs(5));
            assert_eq!(current(), Some(soon));
        }
        assert_eq!(current(), Some(soon));
        drop(outer);
        assert_eq!(current(), None);
    }
}
