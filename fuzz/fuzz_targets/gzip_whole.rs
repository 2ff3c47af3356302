//! Fuzzes whole-buffer gzip decoding against the streaming decoder: for any bytes, and for gzip
//! streams of one to three members made from the input and then damaged (a byte changed, bytes
//! cut or added), whenever `inflate_exact` takes a stream the streaming decoder must read the same
//! bytes from it without error; and whenever the streaming decoder reads exactly the room's size
//! from members with plain headers, `inflate_exact` must take it too.
#![no_main]

use std::io::{Read, Write};
use std::mem::MaybeUninit;

use dicegrad::nifti::gzip::{inflate_exact, GzMembers};
use libfuzzer_sys::fuzz_target;

fn whole(stream: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut out = vec![MaybeUninit::new(0u8); n];
    // SAFETY: every byte was set before the call
    inflate_exact(stream, &mut out).then(|| out.iter().map(|b| unsafe { b.assume_init() }).collect())
}

fn streamed(stream: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    GzMembers::new(stream).take(1 << 24).read_to_end(&mut out)?;
    Ok(out)
}

fn check(stream: &[u8], n: usize) {
    let got = whole(stream, n);
    let reference = streamed(stream);
    if let Some(bytes) = &got {
        assert_eq!(reference.as_ref().ok(), Some(bytes), "taken whole, but the streaming decoder disagrees");
    }
    if let Ok(bytes) = &reference {
        let plain = stream.len() >= 4 && stream[3] & !0x1d == 0;
        if bytes.len() == n && plain && got.is_none() {
            // members after the first may carry other flags: only a single member is sure
            let single = whole(stream, n).is_some();
            assert!(single || stream.windows(3).skip(1).any(|w| w == [0x1f, 0x8b, 8]), "a plain stream refused");
        }
    }
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (ctl, body) = data.split_at(6);
    // any bytes as a stream, with a room of any size near the input's
    check(body, usize::from(u16::from_le_bytes([ctl[0], ctl[1]])) % (body.len() * 4 + 64));
    // the input compressed into one to three members, then damaged
    let parts = 1 + usize::from(ctl[2] % 3);
    let cut = body.len() / parts;
    let mut stream = Vec::new();
    for p in 0..parts {
        let end = if p + 1 == parts { body.len() } else { (p + 1) * cut };
        stream.extend(gzip(&body[p * cut..end], u32::from(ctl[3] % 10)));
    }
    let at = usize::from(u16::from_le_bytes([ctl[4], ctl[5]])) % (stream.len() + 1);
    match ctl[2] / 3 % 5 {
        0 => {}
        1 if at < stream.len() => stream[at] ^= ctl[5] | 1,
        2 => stream.truncate(at),
        3 => stream.extend(std::iter::repeat_n(ctl[4] & 1, usize::from(ctl[5]))),
        _ => stream.insert(at, ctl[4]),
    }
    check(&stream, body.len());
});
