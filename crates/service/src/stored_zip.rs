//! A `.zip` written as a stream of chunks, entry by entry, without seeking: stored (no
//! deflate — frames are compressed images or raw pixels already), each entry's CRC-32 and size
//! known before its local header is written (no data descriptors, so streaming readers work
//! too), ZIP64 records where an offset or the central directory passes 4 GiB, and a fixed
//! timestamp, so the same request always gives the same bytes.

use bytes::Bytes;

/// Where 32-bit fields end and ZIP64 takes over.
const ZIP32_LIMIT: u64 = 0xFFFF_FFFF;
/// MS-DOS date of 1980-01-01, the earliest a zip can say; entries carry no real time.
const DOS_DATE: u16 = (1 << 5) | 1;
const VERSION_STORED: u16 = 20;
const VERSION_ZIP64: u16 = 45;

struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// Writes one stored zip as chunks: [`StoredZip::entry`] for each file, then
/// [`StoredZip::finish`] for the central directory.
pub struct StoredZip {
    entries: Vec<Entry>,
    written: u64,
    /// Values at or past this are written as ZIP64 (lowered in tests to exercise ZIP64).
    zip64_from: u64,
}

impl Default for StoredZip {
    fn default() -> Self {
        Self::new()
    }
}

impl StoredZip {
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            written: 0,
            zip64_from: ZIP32_LIMIT,
        }
    }

    /// The local header of `name` holding `data`; the caller sends it, then `data` unchanged.
    pub fn entry(&mut self, name: &str, data: &[u8]) -> Vec<u8> {
        let size = data.len() as u64;
        let entry = Entry {
            name: name.to_owned(),
            crc: crc32fast::hash(data),
            size,
            offset: self.written,
        };
        // A frame is far below 4 GiB; the local header takes ZIP64 sizes only if one is not.
        let zip64 = size >= self.zip64_from;
        let mut header = Vec::with_capacity(30 + name.len() + 20);
        put32(&mut header, 0x0403_4b50);
        put16(
            &mut header,
            if zip64 { VERSION_ZIP64 } else { VERSION_STORED },
        );
        put16(&mut header, 0); // flags
        put16(&mut header, 0); // stored
        put16(&mut header, 0); // time 00:00:00
        put16(&mut header, DOS_DATE);
        put32(&mut header, entry.crc);
        let size32 = if zip64 {
            ZIP32_LIMIT as u32
        } else {
            size as u32
        };
        put32(&mut header, size32);
        put32(&mut header, size32);
        put16(&mut header, name.len() as u16);
        put16(&mut header, if zip64 { 20 } else { 0 });
        header.extend_from_slice(name.as_bytes());
        if zip64 {
            put16(&mut header, 0x0001);
            put16(&mut header, 16);
            put64(&mut header, size);
            put64(&mut header, size);
        }
        self.written += header.len() as u64 + size;
        self.entries.push(entry);
        header
    }

    /// The central directory and its end records.
    pub fn finish(self) -> Bytes {
        let directory_offset = self.written;
        let mut out = Vec::with_capacity(self.entries.len() * 80 + 120);
        for entry in &self.entries {
            let big_size = entry.size >= self.zip64_from;
            let big_offset = entry.offset >= self.zip64_from;
            let mut extra = Vec::new();
            if big_size {
                put64(&mut extra, entry.size);
                put64(&mut extra, entry.size);
            }
            if big_offset {
                put64(&mut extra, entry.offset);
            }
            let zip64 = !extra.is_empty();
            put32(&mut out, 0x0201_4b50);
            put16(&mut out, if zip64 { VERSION_ZIP64 } else { VERSION_STORED });
            put16(&mut out, if zip64 { VERSION_ZIP64 } else { VERSION_STORED });
            put16(&mut out, 0);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put16(&mut out, DOS_DATE);
            put32(&mut out, entry.crc);
            let size32 = if big_size {
                ZIP32_LIMIT as u32
            } else {
                entry.size as u32
            };
            put32(&mut out, size32);
            put32(&mut out, size32);
            put16(&mut out, entry.name.len() as u16);
            put16(&mut out, if zip64 { extra.len() as u16 + 4 } else { 0 });
            put16(&mut out, 0); // comment
            put16(&mut out, 0); // disk
            put16(&mut out, 0); // internal attributes
            put32(&mut out, 0); // external attributes
            let offset32 = if big_offset {
                ZIP32_LIMIT as u32
            } else {
                entry.offset as u32
            };
            put32(&mut out, offset32);
            out.extend_from_slice(entry.name.as_bytes());
            if zip64 {
                put16(&mut out, 0x0001);
                put16(&mut out, extra.len() as u16);
                out.extend_from_slice(&extra);
            }
        }
        let directory_size = out.len() as u64;
        let count = self.entries.len() as u64;
        let zip64 = directory_offset >= self.zip64_from
            || directory_size >= self.zip64_from
            || count >= 0xFFFF.min(self.zip64_from);
        if zip64 {
            let record_offset = directory_offset + directory_size;
            put32(&mut out, 0x0606_4b50);
            put64(&mut out, 44); // the record's size after this field
            put16(&mut out, VERSION_ZIP64);
            put16(&mut out, VERSION_ZIP64);
            put32(&mut out, 0);
            put32(&mut out, 0);
            put64(&mut out, count);
            put64(&mut out, count);
            put64(&mut out, directory_size);
            put64(&mut out, directory_offset);
            put32(&mut out, 0x0706_4b50);
            put32(&mut out, 0);
            put64(&mut out, record_offset);
            put32(&mut out, 1);
        }
        let clamp16 = |v: u64| if zip64 { 0xFFFF } else { v as u16 };
        let clamp32 = |v: u64| if zip64 { ZIP32_LIMIT as u32 } else { v as u32 };
        put32(&mut out, 0x0605_4b50);
        put16(&mut out, 0);
        put16(&mut out, 0);
        put16(&mut out, clamp16(count));
        put16(&mut out, clamp16(count));
        put32(&mut out, clamp32(directory_size));
        put32(&mut out, clamp32(directory_offset));
        put16(&mut out, 0);
        Bytes::from(out)
    }
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn zip_of(mut writer: StoredZip, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            out.extend(writer.entry(name, data));
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&writer.finish());
        out
    }

    /// Python's zipfile (an independent reader): each entry's name, method and CRC-checked bytes.
    fn python_reads(zip: &[u8]) -> String {
        let script = "import sys, io, zipfile, hashlib\n\
            z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\n\
            assert z.testzip() is None\n\
            for i in z.infolist():\n    \
                print(i.filename, i.compress_type, i.file_size, hashlib.sha256(z.read(i)).hexdigest()[:12])\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        child.stdin.take().unwrap().write_all(zip).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn files() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("frame-1.png", (0..5000).map(|i| (i % 251) as u8).collect()),
            ("frame-20.png", b"twenty".to_vec()),
            ("frame-300.npy", Vec::new()),
        ]
    }

    fn expected() -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (name, data) in files() {
            let digest = sha256_hex(&data);
            writeln!(text, "{name} 0 {} {}", data.len(), &digest[..12]).unwrap();
        }
        text
    }

    fn sha256_hex(data: &[u8]) -> String {
        let mut child = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(data).unwrap();
        let output = child.wait_with_output().unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_stored_zip_reads_back_in_python() {
        let zip = zip_of(StoredZip::new(), &files());
        assert_eq!(python_reads(&zip), expected());
        // The same entries always give the same bytes.
        assert_eq!(zip, zip_of(StoredZip::new(), &files()));
    }

    #[test]
    fn zip64_records_read_back_in_python() {
        // Every size and offset written the ZIP64 way, as past 4 GiB.
        let writer = StoredZip {
            zip64_from: 0,
            ..StoredZip::new()
        };
        let zip = zip_of(writer, &files());
        assert!(zip.windows(4).any(|w| w == 0x0606_4b50u32.to_le_bytes()));
        assert_eq!(python_reads(&zip), expected());
    }
}
