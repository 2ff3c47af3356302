//! The single-thread decoder floor: reads a `.gz` file whole and decodes all of its members with
//! libdeflate into one fresh buffer, on one thread — what a program that needs the decoded bytes
//! in memory cannot do faster on one core. `benches/e2e.sh` times it beside `dicegrad analyze`.
//!
//!     cargo run --release --example libdeflate_floor -- FILE.nii.gz

use std::mem::MaybeUninit;

use dicegrad::libdeflate::Inflater;

fn main() {
    let path = std::env::args().nth(1).expect("usage: libdeflate_floor FILE.gz");
    let input = std::fs::read(&path).expect("cannot read the file");
    // the last member's ISIZE: the size of a single-member file (mod 2^32)
    let isize = u32::from_le_bytes(input[input.len() - 4..].try_into().unwrap()) as usize;
    let mut out: Vec<u8> = Vec::with_capacity(isize);
    let mut inflater = Inflater::new();
    let (mut at, mut filled) = (0, 0);
    while at < input.len() && input[at] == 0x1f {
        let room: &mut [MaybeUninit<u8>] = &mut out.spare_capacity_mut()[filled..];
        let (used, written) = inflater.gzip_member(&input[at..], room).expect("not a gzip file of ISIZE bytes");
        (at, filled) = (at + used, filled + written);
    }
    // SAFETY: the decoder wrote the first `filled` bytes
    unsafe { out.set_len(filled) };
    println!("{} bytes", std::hint::black_box(&out).len());
}
