//! The values of a case: borrowed from a caller's array, or owned — possibly after a few bytes
//! that are not values.
//!
//! A volume decoded whole from a `.nii.gz` comes with the file's header before its data (the
//! stream holds both, and the decoder writes all of it into one buffer). Rather than move 100
//! million values down by a few hundred bytes, an owned buffer keeps them where they landed and
//! starts after the header.

use std::ops::Deref;

/// Values borrowed, or owned from `start` on.
#[derive(Clone, Debug)]
pub enum Buffer<'a, T> {
    Borrowed(&'a [T]),
    Owned { buf: Vec<T>, start: usize },
}

impl<'a, T> Buffer<'a, T> {
    /// The values `buf[start..]`, owned. Panics when `start` is beyond the end of `buf`.
    pub fn after(buf: Vec<T>, start: usize) -> Self {
        assert!(start <= buf.len(), "a buffer starting at {start} of {}", buf.len());
        Buffer::Owned { buf, start }
    }
}

impl<T: Clone> Buffer<'_, T> {
    /// The values as a vector of their own (moved down to the start of the buffer if need be).
    pub fn into_owned(self) -> Vec<T> {
        match self {
            Buffer::Borrowed(v) => v.to_vec(),
            Buffer::Owned { mut buf, start } => {
                buf.drain(..start);
                buf
            }
        }
    }

    /// The values, to change: borrowed ones are copied first (as `Cow::to_mut`).
    pub fn to_mut(&mut self) -> &mut [T] {
        if let Buffer::Borrowed(v) = *self {
            *self = Buffer::from(v.to_vec());
        }
        match self {
            Buffer::Owned { buf, start } => &mut buf[*start..],
            Buffer::Borrowed(_) => unreachable!("made owned above"),
        }
    }
}

impl<T> Deref for Buffer<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Buffer::Borrowed(v) => v,
            Buffer::Owned { buf, start } => &buf[*start..],
        }
    }
}

impl<T> From<Vec<T>> for Buffer<'_, T> {
    fn from(buf: Vec<T>) -> Self {
        Buffer::Owned { buf, start: 0 }
    }
}

impl<'a, T> From<&'a [T]> for Buffer<'a, T> {
    fn from(v: &'a [T]) -> Self {
        Buffer::Borrowed(v)
    }
}

impl<T: PartialEq> PartialEq for Buffer<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_buffer_holds_the_values_after_its_start() {
        let b: Buffer<u8> = Buffer::after(vec![9, 9, 1, 2, 3], 2);
        assert_eq!(&b[..], &[1, 2, 3]);
        assert_eq!(b, Buffer::Borrowed(&[1, 2, 3][..]));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn changing_borrowed_values_copies_them_first() {
        let original = [1.0f32, 2.0];
        let mut b = Buffer::Borrowed(&original[..]);
        b.to_mut()[1] = 5.0;
        assert_eq!((&b[..], original), (&[1.0, 5.0][..], [1.0, 2.0]));
        let mut owned: Buffer<f32> = Buffer::after(vec![0.0, 3.0], 1);
        owned.to_mut()[0] = 4.0;
        assert_eq!(&owned[..], &[4.0]);
        assert_eq!(owned.into_owned(), vec![4.0]);
    }
}
