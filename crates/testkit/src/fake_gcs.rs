//! fake-gcs-server on loopback (filled in by the cache issue).
