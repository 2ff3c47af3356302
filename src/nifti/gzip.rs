//! gzip members read one after the other, and what may follow the last one.
//!
//! A `.nii.gz` may hold several gzip members (concatenated files, parallel compressors); each
//! member's CRC-32 and length are checked by the decoder when it ends. After the last member
//! there may be nothing, or zero bytes to the end of the file (padding to a tape or disk block,
//! which `gzip -t` and nibabel accept). Anything else there is refused as corrupt data.
//!
//! An input that ends early is an unexpected end (`io::ErrorKind::UnexpectedEof`), damaged data
//! is invalid data: the reader tells a file cut short from a damaged one by that kind. A member
//! that starts after a complete one and ends before giving any byte is [`CutMember`], so that
//! stray bytes after the data are not taken for a cut inside it.

use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;

/// The decompressed bytes of every gzip member of a stream, one after the other (the members'
/// CRCs and lengths checked by the decoder), ending at the end of the input or at zero bytes that
/// run from the end of the last member to the end of the input. After a member, a byte 0x1f
/// starts the next member (the decoder checks its header); any other byte but zero, or anything
/// but zeros after the first zero, is an `InvalidData` error. A member after a complete one that
/// ends early before giving a byte is reported as [`CutMember`] (an unexpected end).
pub(super) struct GzMembers<R: BufRead> {
    member: Option<GzDecoder<R>>,
    /// The open member follows a complete one.
    later: bool,
    /// The open member has given bytes.
    gave: bool,
}

/// A gzip member that starts after a complete one but ends before any of its data: after the
/// voxel data, stray bytes rather than a file cut short inside its data.
#[derive(Debug)]
struct CutMember;

impl std::fmt::Display for CutMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the start of a further gzip member follows the complete stream, cut short before any data")
    }
}

impl std::error::Error for CutMember {}

/// Whether `e` is a [`CutMember`].
pub(super) fn is_cut_member(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<CutMember>())
}

impl<R: BufRead> GzMembers<R> {
    pub(super) fn new(input: R) -> Self {
        GzMembers { member: Some(GzDecoder::new(input)), later: false, gave: false }
    }

    /// After a member: whether the input ends there (possibly after zero padding). Otherwise the
    /// next member starts.
    fn at_end(input: &mut R) -> io::Result<bool> {
        let junk = |what| Err(io::Error::new(io::ErrorKind::InvalidData, what));
        match input.fill_buf()?.first() {
            None => return Ok(true),
            Some(0x1f) => return Ok(false),
            Some(0) => {}
            Some(_) => {
                return junk(
                    "the file goes on after its last gzip member with bytes that are neither another member nor \
                     zero padding",
                )
            }
        }
        // zero padding: zeros to the end of the input
        loop {
            let rest = input.fill_buf()?;
            if rest.is_empty() {
                return Ok(true);
            }
            if rest.iter().any(|&b| b != 0) {
                return junk("bytes other than zeros follow the zero padding after the last gzip member");
            }
            let n = rest.len();
            input.consume(n);
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = match self.member.as_mut().map(|member| member.read(buf)) {
                Some(Ok(n)) => n,
                Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof && self.later && !self.gave => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, CutMember))
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            };
            if n > 0 {
                self.gave = true;
                return Ok(n);
            }
            // the member ended, its CRC and length checked: what follows?
            let Some(mut input) = self.member.take().map(GzDecoder::into_inner) else { return Ok(0) };
            if !Self::at_end(&mut input)? {
                (self.later, self.gave) = (true, false);
                self.member = Some(GzDecoder::new(input));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn member(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn read_all(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzMembers::new(input).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn members_are_read_in_turn_and_zero_padding_ends_them() {
        let two = [member(b"hello, "), member(b"world"), vec![0; 700]].concat();
        assert_eq!(read_all(&two).unwrap(), b"hello, world");
    }

    #[test]
    fn anything_but_zeros_after_the_last_member_is_invalid_data() {
        for tail in [&b"junk"[..], &[0, 0, 7], &[0x1f, 0x8b, 8, 0, 0]] {
            let e = read_all(&[member(b"data"), tail.to_vec()].concat()).unwrap_err();
            let cut = tail[0] == 0x1f;
            assert_eq!(is_cut_member(&e), cut, "{tail:?}: {e}");
            let kind = if cut { io::ErrorKind::UnexpectedEof } else { io::ErrorKind::InvalidData };
            assert_eq!(e.kind(), kind, "{tail:?}: {e}");
        }
    }

    #[test]
    fn a_member_missing_its_end_is_an_unexpected_end_not_a_cut_member() {
        let m = member(b"data");
        let e = read_all(&m[..m.len() - 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!is_cut_member(&e));
    }
}
