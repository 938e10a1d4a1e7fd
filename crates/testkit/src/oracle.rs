//! The ffmpeg CLI as the independent oracle for frame exactness.
