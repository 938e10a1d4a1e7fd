//! The directory listing object of SPEC §3.

use lazycache_service::{Listing, RelPath};
use serde_json::{Value, json};

/// `{"Path": "/<dir>/", "Files": [...], "Directories": [...]}`; the root's Path is `/`.
pub fn body(dir: &RelPath, listing: &Listing) -> Value {
    let path = if dir.is_root() {
        "/".to_owned()
    } else {
        format!("/{dir}/")
    };
    json!({
        "Path": path,
        "Files": listing.files,
        "Directories": listing.directories,
    })
}
