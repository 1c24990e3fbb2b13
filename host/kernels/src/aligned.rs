//! Packed weights on cache-line boundaries.
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
    impl Plain for i16 {}
    impl Plain for i32 {}
}
use sealed::Plain;

/// `len` values of `T` starting on a 64-byte boundary; derefs to `[T]`.
#[derive(Clone, PartialEq, Eq)]
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

impl<T: Plain + fmt::Debug> fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Plain + Default + PartialEq + fmt::Debug + From<i8>>() {
        for len in [0, 1, 31, 32, 33, 63, 64, 65, 1000] {
            let mut a = Aligned::<T>::zeroed(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % 64, 0);
            assert!(a.iter().all(|b| *b == T::default()));
            if len > 0 {
                a[len - 1] = T::from(-7);
                let b = a.clone();
                assert_eq!(b.as_ptr() as usize % 64, 0);
                assert_eq!(b[len - 1], T::from(-7));
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn starts_on_a_line_and_holds_exactly_len_values() {
        check::<i8>();
        check::<i16>();
        check::<i32>();
    }
}
