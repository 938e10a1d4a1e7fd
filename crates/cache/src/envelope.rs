//! The self-describing entry format of the disk tier (and of object stores that cannot store a
//! content type): a header with lengths and a CRC-32, the full canonical key, the content type,
//! and the value. Every read checks all of it, so a truncated, damaged or misnamed file is
//! rejected rather than served.
//!
//! Layout (integers little-endian):
//! `magic "LZCE" | version u16 | reserved u16 | key_len u32 | type_len u32 | value_len u64 |
//! crc32 u32 | key | content type | value`, where the CRC covers every byte but its own.

use bytes::Bytes;

use crate::value::CachedValue;

const MAGIC: &[u8; 4] = b"LZCE";
/// Version of this layout; a file with another version is discarded, never misread.
const ENVELOPE_VERSION: u16 = 1;
/// Bytes before the key.
pub const HEADER_LEN: usize = 28;
const CRC_OFFSET: usize = 24;
/// Content types longer than this are refused (they would not be real MIME types).
const MAX_CONTENT_TYPE_LEN: usize = 1024;

/// Why an entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("shorter than its header")]
    Truncated,
    #[error("not a lazycache entry (bad magic)")]
    BadMagic,
    #[error("entry format version {0}, expected {ENVELOPE_VERSION}")]
    WrongVersion(u16),
    #[error("length fields say {expected} bytes, the entry has {actual}")]
    WrongLength { expected: u64, actual: u64 },
    #[error("checksum mismatch")]
    BadChecksum,
    #[error("entry belongs to another key")]
    WrongKey,
    #[error("content type is not UTF-8")]
    BadContentType,
}

/// The header of an entry holding `value` under the canonical key `key`.
pub fn encode_header(key: &str, value: &CachedValue) -> Vec<u8> {
    let content_type = value.content_type().as_bytes();
    let mut header = Vec::with_capacity(HEADER_LEN + key.len() + content_type.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&ENVELOPE_VERSION.to_le_bytes());
    header.extend_from_slice(&0u16.to_le_bytes());
    header.extend_from_slice(&len_u32(key.len()).to_le_bytes());
    header.extend_from_slice(&len_u32(content_type.len()).to_le_bytes());
    header.extend_from_slice(&(value.len() as u64).to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    header.extend_from_slice(key.as_bytes());
    header.extend_from_slice(content_type);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[..CRC_OFFSET]);
    crc.update(&header[HEADER_LEN..]);
    crc.update(value.bytes());
    header[CRC_OFFSET..HEADER_LEN].copy_from_slice(&crc.finalize().to_le_bytes());
    header
}

/// The whole entry as one buffer (header, key, content type, value).
pub fn encode(key: &str, value: &CachedValue) -> Bytes {
    let mut entry = encode_header(key, value);
    entry.extend_from_slice(value.bytes());
    Bytes::from(entry)
}

/// Total entry size for a key and value, without encoding it.
pub fn encoded_len(key: &str, value: &CachedValue) -> u64 {
    (HEADER_LEN + key.len() + value.content_type().len() + value.len()) as u64
}

/// Checks an entry completely and returns its value (sharing `entry`'s buffer).
pub fn decode(entry: Bytes, expected_key: &str) -> Result<CachedValue, EnvelopeError> {
    let header = entry.get(..HEADER_LEN).ok_or(EnvelopeError::Truncated)?;
    if &header[..4] != MAGIC {
        return Err(EnvelopeError::BadMagic);
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != ENVELOPE_VERSION {
        return Err(EnvelopeError::WrongVersion(version));
    }
    let key_len = u64::from(read_u32(header, 8));
    let type_len = u64::from(read_u32(header, 12));
    let value_len = read_u64(header, 16);
    let stored_crc = read_u32(header, CRC_OFFSET);
    let expected = (HEADER_LEN as u64)
        .saturating_add(key_len)
        .saturating_add(type_len)
        .saturating_add(value_len);
    let actual = entry.len() as u64;
    if expected != actual || type_len > MAX_CONTENT_TYPE_LEN as u64 {
        return Err(EnvelopeError::WrongLength { expected, actual });
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&entry[..CRC_OFFSET]);
    crc.update(&entry[HEADER_LEN..]);
    if crc.finalize() != stored_crc {
        return Err(EnvelopeError::BadChecksum);
    }
    // The lengths were checked against the entry's size above, so these conversions and ranges hold.
    let key_end = HEADER_LEN + key_len as usize;
    let type_end = key_end + type_len as usize;
    if &entry[HEADER_LEN..key_end] != expected_key.as_bytes() {
        return Err(EnvelopeError::WrongKey);
    }
    let content_type = std::str::from_utf8(&entry[key_end..type_end])
        .map_err(|_| EnvelopeError::BadContentType)?;
    Ok(CachedValue::new(content_type, entry.slice(type_end..)))
}

fn len_u32(len: usize) -> u32 {
    // Keys and content types are small; a value's length has its own 64-bit field.
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "lazycache-key/v1 frame mirror=1:m";

    fn value() -> CachedValue {
        CachedValue::new(
            "image/png",
            (0..=255u8).cycle().take(5000).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn round_trips() {
        let entry = encode(KEY, &value());
        assert_eq!(entry.len() as u64, encoded_len(KEY, &value()));
        assert_eq!(decode(entry, KEY).unwrap(), value());
        let empty = CachedValue::new("", Bytes::new());
        assert_eq!(decode(encode(KEY, &empty), KEY).unwrap(), empty);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let entry = encode(KEY, &value());
        for len in 0..entry.len() {
            assert!(
                decode(entry.slice(..len), KEY).is_err(),
                "accepted {len} bytes"
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_rejected() {
        let entry = encode(KEY, &value()).to_vec();
        for at in (0..entry.len()).step_by(7) {
            let mut damaged = entry.clone();
            damaged[at] ^= 0x40;
            assert!(
                decode(Bytes::from(damaged), KEY).is_err(),
                "accepted a flip at {at}"
            );
        }
    }

    #[test]
    fn another_key_is_rejected() {
        let entry = encode(KEY, &value());
        assert_eq!(
            decode(entry, "lazycache-key/v1 frame mirror=1:n"),
            Err(EnvelopeError::WrongKey)
        );
    }

    #[test]
    fn appended_bytes_are_rejected() {
        let mut entry = encode(KEY, &value()).to_vec();
        entry.push(0);
        assert!(matches!(
            decode(Bytes::from(entry), KEY),
            Err(EnvelopeError::WrongLength { .. })
        ));
    }
}
