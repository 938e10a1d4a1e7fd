//! `/info`: component name → version, FFmpeg's libraries included.

use serde_json::{Map, Value};

use crate::options::HttpOptions;

pub fn body(options: &HttpOptions) -> Value {
    let mut components = Map::new();
    for (name, version) in &options.components {
        components.insert(name.clone(), Value::String(version.clone()));
    }
    components.insert(
        "lazycache-http".into(),
        Value::String(env!("CARGO_PKG_VERSION").into()),
    );
    for (library, version) in lazycache_service::ffmpeg_versions() {
        components.insert(library.into(), Value::String(version));
    }
    Value::Object(components)
}
