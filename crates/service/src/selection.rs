//! Which frames a many-frames request names (SPEC §3, Many frames): `A-B` (inclusive), `A-B:S`
//! (every S-th from A) or `N,M,K`, parsed and bounded (at most [`MAX_FRAMES`]) before anything
//! is allocated for them, and checked against the movie's frame count once it is known.

use lazycache_decode::Error as DecodeError;

use crate::error::{ServiceError, ServiceResult};

/// Most frames one request may name: a bound on its work and its answer's length.
pub const MAX_FRAMES: u64 = 1000;

/// Frames in the order they were named; every number counts from 1, none twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSelection {
    frames: Vec<u64>,
    /// The selection written one way only (`A-B:S` or `N,M,K`), for keys and tags.
    canonical: String,
}

impl FrameSelection {
    /// `A-B`, `A-B:S` or `N,M,K` as typed.
    pub fn parse(text: &str) -> ServiceResult<Self> {
        let text = text.trim();
        if text.contains(',') || !text.contains('-') {
            let frames = list(text)?;
            let canonical = frames
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            Ok(Self { frames, canonical })
        } else {
            let (first, last, step) = range(text)?;
            let count = (last - first) / step + 1;
            Ok(Self {
                frames: (0..count).map(|i| first + i * step).collect(),
                canonical: format!("{first}-{last}:{step}"),
            })
        }
    }

    /// The selection in one spelling: `A-B:S` for ranges, `N,M,K` for lists.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    pub fn frames(&self) -> &[u64] {
        &self.frames
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Every frame within a movie of `count` frames.
    pub fn check(&self, count: u64) -> ServiceResult<()> {
        match self.frames.iter().find(|&&frame| frame > count) {
            Some(&frame) => Err(DecodeError::FrameOutOfRange { frame, count }.into()),
            None => Ok(()),
        }
    }
}

fn bad(text: &str) -> ServiceError {
    ServiceError::BadRequest(format!(
        "frames must be A-B, A-B:S or N,M,K (frame numbers from 1), not {text:?}"
    ))
}

fn too_many(count: u64) -> ServiceError {
    ServiceError::BadRequest(format!(
        "a request may name at most {MAX_FRAMES} frames, not {count}"
    ))
}

/// A frame number from 1.
fn number(text: &str, whole: &str) -> ServiceResult<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(whole));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(DecodeError::FrameZero.into()),
        Ok(number) => Ok(number),
        Err(_) => Err(bad(whole)),
    }
}

/// The S of `A-B:S`: a whole number from 1.
fn step_of(text: &str, whole: &str) -> ServiceResult<u64> {
    match text.trim().parse::<u64>() {
        Ok(step) if step >= 1 && text.trim().bytes().all(|b| b.is_ascii_digit()) => Ok(step),
        _ => Err(ServiceError::BadRequest(format!(
            "the step of {whole:?} must be a whole number from 1"
        ))),
    }
}

/// `A-B[:S]` as (A, B, S), naming at most [`MAX_FRAMES`] frames.
fn range(text: &str) -> ServiceResult<(u64, u64, u64)> {
    let (span, step) = match text.split_once(':') {
        Some((span, step)) => (span, step_of(step, text)?),
        None => (text, 1),
    };
    let (first, last) = span.split_once('-').ok_or_else(|| bad(text))?;
    let (first, last) = (number(first, text)?, number(last, text)?);
    if last < first {
        return Err(ServiceError::BadRequest(format!(
            "frames {first}-{last}: the first must not come after the last"
        )));
    }
    // Counted before anything is allocated, so `1-99999999999` costs nothing.
    let count = (last - first) / step + 1;
    if count > MAX_FRAMES {
        return Err(too_many(count));
    }
    Ok((first, last, step))
}

fn list(text: &str) -> ServiceResult<Vec<u64>> {
    let named = text.split(',').count() as u64;
    if named > MAX_FRAMES {
        return Err(too_many(named));
    }
    let mut frames = Vec::with_capacity(named as usize);
    for part in text.split(',') {
        let frame = number(part, text)?;
        if frames.contains(&frame) {
            return Err(ServiceError::BadRequest(format!(
                "frame {frame} is named twice in {text:?}"
            )));
        }
        frames.push(frame);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(text: &str) -> Result<Vec<u64>, String> {
        FrameSelection::parse(text)
            .map(|s| s.frames().to_vec())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn ranges_steps_and_lists() {
        assert_eq!(frames("3-7"), Ok(vec![3, 4, 5, 6, 7]));
        assert_eq!(frames("1-10:3"), Ok(vec![1, 4, 7, 10]));
        assert_eq!(frames("1-11:3"), Ok(vec![1, 4, 7, 10]));
        assert_eq!(frames("5-5"), Ok(vec![5]));
        assert_eq!(frames("9,2,40"), Ok(vec![9, 2, 40]));
        assert_eq!(frames("12"), Ok(vec![12]));
        let canonical = |text: &str| FrameSelection::parse(text).map(|s| s.canonical().to_owned());
        assert_eq!(canonical(" 3-7 ").ok().as_deref(), Some("3-7:1"));
        assert_eq!(canonical("9, 2,40").ok().as_deref(), Some("9,2,40"));
        assert_eq!(frames("1-1000").map(|f| f.len()), Ok(1000));
        assert_eq!(frames("1-1999:2").map(|f| f.len()), Ok(1000));
    }

    #[test]
    fn bad_selections_say_why() {
        assert_eq!(frames("0-4"), Err("frames count from 1".into()));
        assert_eq!(frames("3,0"), Err("frames count from 1".into()));
        assert_eq!(
            frames("1-1001"),
            Err("a request may name at most 1000 frames, not 1001".into())
        );
        assert!(frames("1-99999999999999").is_err_and(|e| e.contains("at most 1000")));
        let long = (1..=1001)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(frames(&long).is_err_and(|e| e.contains("not 1001")));
        assert!(frames("7-3").is_err_and(|e| e.contains("must not come after")));
        assert!(frames("2,5,2").is_err_and(|e| e.contains("named twice")));
        for bad in [
            "", "a-b", "1-", "-4", "1-4:0", "1-4:x", "1,,2", "+3", "1-2-3", " , ",
        ] {
            assert!(frames(bad).is_err(), "{bad:?}");
        }
        assert!(frames("1-4:0").is_err_and(|e| e.contains("step")));
    }

    #[test]
    fn frames_past_the_end_are_refused() -> ServiceResult<()> {
        let selection = FrameSelection::parse("70-80")?;
        assert!(selection.check(80).is_ok());
        let error = selection.check(75).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("frame 76 is past the last frame (75)")
        );
        Ok(())
    }
}
