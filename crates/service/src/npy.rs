//! NumPy `.npy` framing for many frames in one array: a header written before any frame is
//! decoded (any dtype — `|u1`, `<u2` — and any shape, with or without a channel axis), and the
//! pixels of a one-frame `.npy` taken out of its own header to follow it.

use bytes::Bytes;

use crate::error::{ServiceError, ServiceResult};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The `.npy` header (magic, version, length, dict, padding to 64 bytes) of an array of
/// `descr` (e.g. `|u1`) and `shape`, C order. Version 1.0 unless the dict needs 2.0's length.
pub fn header(descr: &str, shape: &[u64]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_text(shape)
    );
    let (version, length_bytes) = if dict.len() + 1 + 10 < usize::from(u16::MAX) {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    let preamble = MAGIC.len() + 2 + length_bytes;
    let padding = (64 - (preamble + dict.len() + 1) % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(preamble + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out
}

/// A shape as Python writes a tuple: `(3,)`, `(2, 3)`.
pub fn shape_text(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// The pixels of a one-frame `.npy`, checked to be an array of `descr` and `shape`.
pub fn pixels_of(npy: &Bytes, descr: &str, shape: &[u64]) -> ServiceResult<Bytes> {
    let broken = |why: &str| ServiceError::Internal(format!("a frame's .npy {why}"));
    if npy.len() < 10 || &npy[..MAGIC.len()] != MAGIC {
        return Err(broken("has no NumPy header"));
    }
    let (length, start): (usize, usize) = match npy[6] {
        1 => (usize::from(u16::from_le_bytes([npy[8], npy[9]])), 10),
        2 | 3 if npy.len() >= 12 => (
            u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize,
            12,
        ),
        _ => return Err(broken("has an unknown version")),
    };
    let end = start
        .checked_add(length)
        .filter(|&end| end <= npy.len())
        .ok_or_else(|| broken("is shorter than its header"))?;
    let dict = std::str::from_utf8(&npy[start..end]).map_err(|_| broken("header is not text"))?;
    let wanted_descr = format!("'descr': '{descr}'");
    let wanted_shape = format!("'shape': {}", shape_text(shape));
    if !dict.contains(&wanted_descr) || !dict.contains(&wanted_shape) {
        return Err(broken(&format!(
            "is {}, not {wanted_descr} {wanted_shape}",
            dict.trim()
        )));
    }
    let pixels = npy.slice(end..);
    let expected: u64 = shape.iter().product::<u64>() * sample_bytes(descr);
    if pixels.len() as u64 != expected {
        return Err(broken(&format!(
            "holds {} bytes of pixels, not {expected}",
            pixels.len()
        )));
    }
    Ok(pixels)
}

/// Bytes of one sample of `descr` (`|u1` → 1, `<u2` → 2).
pub fn sample_bytes(descr: &str) -> u64 {
    descr
        .trim_start_matches(['|', '<', '>', '='])
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_aligned_for_any_dtype_and_shape() {
        for (descr, shape) in [
            ("|u1", &[4u64, 1080, 1920, 3][..]),
            ("<u2", &[7, 48, 64][..]),
            ("|u1", &[5][..]),
        ] {
            let bytes = header(descr, shape);
            assert_eq!(&bytes[..6], MAGIC);
            assert_eq!(bytes.len() % 64, 0);
            let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
            assert_eq!(10 + len, bytes.len());
            let text = String::from_utf8_lossy(&bytes[10..]);
            assert!(text.contains(&format!("'descr': '{descr}'")), "{text}");
            assert!(text.contains(&shape_text(shape)), "{text}");
            assert!(text.ends_with('\n'));
        }
        assert_eq!(shape_text(&[5]), "(5,)");
        assert_eq!(shape_text(&[2, 3, 3]), "(2, 3, 3)");
        assert_eq!(sample_bytes("<u2"), 2);
        assert_eq!(sample_bytes("|u1"), 1);
    }

    #[test]
    fn one_frames_pixels_come_out_of_its_header() -> ServiceResult<()> {
        let mut one = header("|u1", &[2, 3, 3]);
        one.extend((0..18).map(|i| i as u8));
        let one = Bytes::from(one);
        let pixels = pixels_of(&one, "|u1", &[2, 3, 3])?;
        assert_eq!(
            pixels.as_ref(),
            (0..18).map(|i| i as u8).collect::<Vec<_>>()
        );
        assert!(pixels_of(&one, "<u2", &[2, 3, 3]).is_err());
        assert!(pixels_of(&one, "|u1", &[3, 2, 3]).is_err());
        assert!(pixels_of(&one.slice(..40), "|u1", &[2, 3, 3]).is_err());
        assert!(pixels_of(&Bytes::from_static(b"PNG"), "|u1", &[1]).is_err());
        Ok(())
    }
}
