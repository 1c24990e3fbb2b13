//! Packed weights and scratch buffers on cache-line boundaries.
//!
//! A `Vec` starts wherever the allocator puts it, usually 16 bytes into a
//! line. Then every 64-byte load of a packed block spans two cache lines
//! (and every other 32-byte one), and a layer that streams its weights from
//! L2 pays for both. Aligning the packed weights took AD's first layer
//! (640 → 128) from about 2600 to 1860 TSC ticks.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// One cache line.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
struct Line([u8; 64]);

mod sealed {
    /// Integers for which every bit pattern is a value and whose size
    /// divides a cache line.
    pub trait Plain: Copy {}
    impl Plain for i8 {}
    impl Plain for u8 {}
    impl Plain for i16 {}
    impl Plain for i32 {}
    impl Plain for i64 {}
}
pub(crate) use sealed::Plain;

/// `len` values of `T` starting on a 64-byte boundary; derefs to `[T]`.
#[derive(Clone)]
pub struct Aligned<T: Plain> {
    lines: Vec<Line>,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Plain> Aligned<T> {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        let per_line = 64 / size_of::<T>();
        Aligned {
            lines: vec![Line([0; 64]); len.div_ceil(per_line)],
            len,
            _values: PhantomData,
        }
    }

    /// A copy of `values`.
    pub fn copied(values: &[T]) -> Self {
        let mut a = Aligned::zeroed(values.len());
        a.copy_from_slice(values);
        a
    }

    /// Values it holds without growing (the scratch bound's tests read it).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.lines.capacity() * (64 / size_of::<T>())
    }

    /// As `Vec::clear`: no values, the memory kept.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// As `Vec::resize`: keeps the first `len` values and sets any new ones
    /// to `value`.
    pub fn resize(&mut self, len: usize, value: T) {
        let per_line = 64 / size_of::<T>();
        let lines = len.div_ceil(per_line);
        if lines > self.lines.len() {
            self.lines.resize(lines, Line([0; 64]));
        }
        let old = self.len;
        self.len = len;
        if len > old {
            self[old..].fill(value);
        }
    }
}

impl<T: Plain> Default for Aligned<T> {
    fn default() -> Self {
        Aligned::zeroed(0)
    }
}

impl<T: Plain> Deref for Aligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `lines` holds at least `len · size_of::<T>()` initialized
        // bytes with no padding (`Line` is exactly its array), aligned to
        // 64 and so to `T`; `T: Plain` makes any bytes a valid `T`. The
        // slice lives as long as the borrow of `self`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the borrow of `self` is exclusive, and any
        // `T` written is valid bytes for `Line`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

/// Equal when the values are, as `Vec`s are: bytes past `len` that a
/// shrinking `resize` left behind do not count.
impl<T: Plain + PartialEq> PartialEq for Aligned<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Plain + Eq> Eq for Aligned<T> {}

impl<T: Plain + fmt::Debug> fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Plain + Default + PartialEq + fmt::Debug>(mark: T) {
        for len in [0, 1, 31, 32, 33, 63, 64, 65, 1000] {
            let mut a = Aligned::<T>::zeroed(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % 64, 0);
            assert!(a.iter().all(|b| *b == T::default()));
            if len > 0 {
                a[len - 1] = mark;
                let b = a.clone();
                assert_eq!(b.as_ptr() as usize % 64, 0);
                assert_eq!(b[len - 1], mark);
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn resizes_as_a_vec_does() {
        let mut a = Aligned::<i16>::default();
        let mut v = Vec::new();
        for (len, fill) in [(5, 3), (40, -2), (7, 9), (0, 1), (100, 4), (33, 0)] {
            a.resize(len, fill);
            v.resize(len, fill);
            assert_eq!(&a[..], &v[..]);
            assert_eq!(a.as_ptr() as usize % 64, 0);
            assert!(a.capacity() >= len);
        }
        let mut b = Aligned::<i16>::zeroed(40);
        b.resize(33, 0);
        b.copy_from_slice(&v);
        assert_eq!(a, b, "the bytes past len differ, the values do not");
        a.clear();
        assert!(a.is_empty() && a.capacity() >= 100);
    }

    #[test]
    fn starts_on_a_line_and_holds_exactly_len_values() {
        check::<i8>(-7);
        check::<u8>(200);
        check::<i16>(-7);
        check::<i32>(-7);
        check::<i64>(-7);
        let v = [3i32, -1, 4, 1, -5];
        assert_eq!(&Aligned::copied(&v)[..], &v[..]);
    }
}
