//! lazycache-testkit: what the tests need from the real world, started and stopped by the tests.
//!
//! Nothing here is a mock: media come from the ffmpeg CLI, the origin is nginx, the object stores
//! are fake-gcs-server and moto's S3 server. A missing tool is a test failure with a clear
//! message, never a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

pub mod fake_gcs;
pub mod fixtures;
pub mod hostile;
pub mod nginx;
pub mod oracle;
pub mod procs;
pub mod s3;
