//! nginx with autoindex on loopback (filled in by the origins issue).
