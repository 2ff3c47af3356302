//! gzip members read one after the other, and what may follow the last one.
//!
//! A `.nii.gz` may hold several gzip members (concatenated files, parallel compressors); each
//! member's CRC-32 and length are checked by the decoder when it ends. After the last member
//! there may be nothing, or zero bytes to the end of the file (padding to a tape or disk block,
//! which `gzip -t` and nibabel accept). Anything else there is refused as corrupt data.
//!
//! [`inflate_exact`] reads the same streams whole (libdeflate), about twice as fast, when they
//! decode to exactly the bytes the NIfTI header promises; it reads nothing else, and leaves every
//! other stream to [`GzMembers`], which says what is wrong with it.
//!
//! An input that ends early is an unexpected end (`io::ErrorKind::UnexpectedEof`), damaged data
//! is invalid data: the reader tells a file cut short from a damaged one by that kind. A member
//! that starts after a complete one and ends before giving any byte is `CutMember`, so that
//! stray bytes after the data are not taken for a cut inside it.

use std::io::{self, BufRead, Read};

use std::mem::MaybeUninit;

use flate2::bufread::GzDecoder;

use crate::libdeflate::Inflater;

/// The decompressed bytes of every gzip member of a stream, one after the other (the members'
/// CRCs and lengths checked by the decoder), ending at the end of the input or at zero bytes that
/// run from the end of the last member to the end of the input. After a member, a byte 0x1f
/// starts the next member (the decoder checks its header); any other byte but zero, or anything
/// but zeros after the first zero, is an `InvalidData` error. A member after a complete one that
/// ends early before giving a byte is reported as `CutMember` (an unexpected end).
pub struct GzMembers<R: BufRead> {
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

/// Whether `e` is a `CutMember`.
pub fn is_cut_member(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<CutMember>())
}

impl<R: BufRead> GzMembers<R> {
    pub fn new(input: R) -> Self {
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

/// The flag bits of a gzip member header that [`inflate_exact`] takes: FTEXT, FEXTRA, FNAME and
/// FCOMMENT. A member with a header CRC (FHCRC, which libdeflate skips unchecked) or reserved bits
/// is left to the streaming decoder.
const WHOLE_FLAGS: u8 = 0x01 | 0x04 | 0x08 | 0x10;

/// The longest file name or comment of a member header the streaming decoder reads (flate2's
/// limit); [`inflate_exact`] leaves members with longer ones to it, which refuses them.
const MAX_HEADER_FIELD: usize = 65535;

/// Whether `member` starts with a gzip member header that [`inflate_exact`] takes: method
/// DEFLATE, flags within [`WHOLE_FLAGS`], and a name and comment the streaming decoder reads.
fn takes_header(member: &[u8]) -> bool {
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    if member.len() < 10 || member[..3] != [0x1f, 0x8b, 8] || member[3] & !WHOLE_FLAGS != 0 {
        return false;
    }
    let flags = member[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(len) = member.get(at..at + 2) else { return false };
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let rest = member.get(at..).unwrap_or_default();
            match rest.iter().take(MAX_HEADER_FIELD + 1).position(|&b| b == 0) {
                Some(len) => at += len + 1,
                None => return false,
            }
        }
    }
    at <= member.len()
}

/// Decodes every gzip member of `input` into `out`, one after the other, and says whether that
/// filled `out` exactly, with every member's CRC-32 and ISIZE right and nothing but zeros after
/// the last one — the stream [`GzMembers`] reads without error, giving exactly `out.len()` bytes.
/// `false` for anything else (the bytes written then mean nothing): damaged or cut short, longer
/// or shorter than `out`, anything but zero padding after it, or a member header this function
/// does not take (`WHOLE_FLAGS`).
pub fn inflate_exact(input: &[u8], out: &mut [MaybeUninit<u8>]) -> bool {
    let mut inflater = Inflater::new();
    let (mut at, mut filled) = (0, 0);
    loop {
        let member = &input[at..];
        if !takes_header(member) {
            return false;
        }
        let Ok((used, written)) = inflater.gzip_member(member, &mut out[filled..]) else { return false };
        (at, filled) = (at + used, filled + written);
        // after a member: the end, zero padding to the end, or the next member
        match input[at..].first() {
            None => break,
            Some(0) if input[at..].iter().all(|&b| b == 0) => break,
            Some(0x1f) => {}
            Some(_) => return false,
        }
    }
    filled == out.len()
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

    /// What [`inflate_exact`] gives for `input` and `n` bytes of room: the bytes when it takes the
    /// stream.
    fn whole(input: &[u8], n: usize) -> Option<Vec<u8>> {
        let mut out = vec![MaybeUninit::new(0); n];
        // SAFETY: every byte was set to zero before the call.
        inflate_exact(input, &mut out).then(|| out.iter().map(|b| unsafe { b.assume_init() }).collect())
    }

    #[test]
    fn whole_decoding_takes_members_and_zero_padding_as_the_stream_does() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 20) as u8).collect();
        let one = member(&data);
        assert_eq!(whole(&one, data.len()).as_deref(), Some(&data[..]));
        let (a, b) = data.split_at(123_457);
        let two = [member(a), member(b), vec![0; 700]].concat();
        assert_eq!(whole(&two, data.len()).as_deref(), Some(&data[..]));
        assert_eq!(read_all(&two).unwrap(), data);
        // an empty member in between
        let three = [member(a), member(b""), member(b)].concat();
        assert_eq!(whole(&three, data.len()).as_deref(), Some(&data[..]));
    }

    #[test]
    fn whole_decoding_takes_nothing_but_streams_that_fill_the_room_exactly() {
        let data = vec![7u8; 50_000];
        let one = member(&data);
        assert!(whole(&one, data.len() - 1).is_none(), "longer than the room");
        assert!(whole(&one, data.len() + 1).is_none(), "shorter than the room");
        for tail in [&b"junk"[..], &[0, 0, 7], &[0x1f, 0x8b, 8, 0, 0], &[0x1f]] {
            assert!(whole(&[one.clone(), tail.to_vec()].concat(), data.len()).is_none(), "{tail:?}");
        }
        let n = one.len();
        assert!(whole(&one[..n - 1], data.len()).is_none(), "cut short");
        let mut crc = one.clone();
        crc[n - 6] ^= 0x10;
        assert!(whole(&crc, data.len()).is_none(), "a wrong CRC-32");
        let mut hcrc = one.clone();
        hcrc[3] |= 0x02;
        assert!(whole(&hcrc, data.len()).is_none(), "a header CRC is left to the streaming decoder");
        // a second member named by more bytes than the streaming decoder reads
        let (a, b) = data.split_at(20_000);
        for (len, taken) in [(65_535, true), (65_536, false)] {
            let mut named = member(b);
            named[3] |= 0x08;
            let name = [vec![b'n'; len], vec![0]].concat();
            named.splice(10..10, name);
            let stream = [member(a), named].concat();
            assert_eq!(whole(&stream, data.len()).is_some(), taken, "a name of {len} bytes");
            assert_eq!(read_all(&stream).is_ok(), taken, "a name of {len} bytes, streamed");
        }
    }

    #[test]
    fn whatever_whole_decoding_takes_the_streaming_decoder_reads_the_same() {
        // damaged copies of a two-member stream: one byte changed, or the stream cut, anywhere
        let data: Vec<u8> = (0..40_000u32).map(|i| (i / 97) as u8 ^ (i % 3) as u8).collect();
        let (a, b) = data.split_at(17_000);
        let good = [member(a), member(b)].concat();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let mut bad = good.clone();
            if round % 3 == 0 {
                bad.truncate(next() as usize % good.len());
            } else {
                let i = next() as usize % bad.len();
                bad[i] = next() as u8;
            }
            if let Some(bytes) = whole(&bad, data.len()) {
                assert_eq!(read_all(&bad).ok(), Some(bytes), "round {round}");
            }
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
