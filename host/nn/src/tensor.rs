//! Host-side tensors of one plugin instance: a slab of reference-counted
//! buffers and views, with the instance's tensor-memory quota.
//!
//! A slot lives while anything refers to it: the guest's handle, a view of
//! it, or a plan operator that reads or writes it. So a plugin can drop
//! handles in any order without leaving a plan pointing at freed memory.

use crate::{NnFault, SLOT_OVERHEAD};

/// Element types, as in `gatehouse:nn/tensors.dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    I8,
    U8,
    I32,
    F32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
        }
    }
}

/// Affine quantization parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Quant {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i32>,
    pub axis: usize,
}

impl Quant {
    /// The per-tensor scale and zero point, refusing per-channel parameters.
    pub fn per_tensor(&self, what: &str) -> Result<(f32, i32), NnFault> {
        match (self.scales.as_slice(), self.zero_points.as_slice()) {
            ([s], [z]) => Ok((*s, *z)),
            _ => Err(NnFault::invalid(format!(
                "{what} needs per-tensor quantization, got {} scales",
                self.scales.len()
            ))),
        }
    }
}

/// Type, shape and quantization of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Desc {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub quant: Option<Quant>,
}

/// Ranks beyond this are refused; TFLite itself stops at 6 for most ops.
pub const MAX_RANK: usize = 8;

/// The most elements a shape may span, its zero dimensions taken as ones.
pub const MAX_EXTENT: u64 = 1 << 48;

/// The most tensors (views included) an instance holds at once. Below
/// wasmtime's cap of 100,000 live handles per store, so that a plugin that
/// hoards small tensors meets `quota-exceeded`, an error it can handle,
/// rather than wasmtime's trap.
pub const MAX_TENSORS: usize = 65_536;

impl Desc {
    /// Validate the description and return its size in bytes.
    pub fn byte_len(&self) -> Result<usize, NnFault> {
        if self.shape.len() > MAX_RANK {
            return Err(NnFault::invalid(format!(
                "rank {} exceeds {MAX_RANK}",
                self.shape.len()
            )));
        }
        // Kernels multiply partial products of the dimensions by small
        // factors (element sizes, input counts); an empty tensor's other
        // dimensions must not overflow them either.
        let extent = self
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d.max(1) as u64))
            .filter(|&e| e <= MAX_EXTENT);
        if extent.is_none() {
            return Err(NnFault::invalid(format!(
                "shape {:?} spans more than 2^48 elements",
                self.shape
            )));
        }
        let elems = self
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|e| e.checked_mul(self.dtype.size()))
            .ok_or_else(|| NnFault::invalid(format!("shape {:?} overflows", self.shape)))?;
        if let Some(q) = &self.quant {
            if q.scales.is_empty() || q.scales.len() != q.zero_points.len() {
                return Err(NnFault::invalid(
                    "quantization needs as many zero points as scales, at least one",
                ));
            }
            if q.scales.iter().any(|s| !s.is_finite() || *s < 0.0) {
                return Err(NnFault::invalid(
                    "quantization scales must be finite and non-negative",
                ));
            }
            if q.scales.len() > 1 && self.shape.get(q.axis).copied() != Some(q.scales.len()) {
                return Err(NnFault::invalid(format!(
                    "{} per-channel scales do not match axis {} of shape {:?}",
                    q.scales.len(),
                    q.axis,
                    self.shape
                )));
            }
        }
        Ok(elems)
    }

    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Host memory the description holds beyond its struct: the shape, scales
    /// and zero points, which a hostile plugin could make long.
    pub fn heap_bytes(&self) -> u64 {
        let quant = self
            .quant
            .as_ref()
            .map_or(0, |q| 4 * (q.scales.len() + q.zero_points.len()));
        (8 * self.shape.len() + quant) as u64
    }
}

/// Names a slot; the generation catches reuse of a freed index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TensorKey {
    index: u32,
    generation: u32,
}

enum Storage {
    Owned(Box<[u8]>),
    View { base: TensorKey, offset: usize },
}

struct Entry {
    desc: Desc,
    len: usize,
    storage: Storage,
    refs: u32,
    /// Quota charged for the slot itself and its description, beyond the data.
    overhead: u64,
}

/// Bytes of one slot of the store, as its list holds it.
pub(crate) const SLOT_BYTES: u64 = std::mem::size_of::<Slot>() as u64;

#[derive(Default)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// Where an operand's bytes are: a base slot and a byte range in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    base: u32,
    offset: usize,
    len: usize,
}

impl Span {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base slot the bytes live in.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Whether every byte of `inner` is a byte of `self`.
    pub fn contains(&self, inner: &Span) -> bool {
        self.base == inner.base
            && self.offset <= inner.offset
            && inner.offset + inner.len <= self.offset + self.len
    }

    /// The same bytes `by` further into the base (a lane of a widened base).
    pub fn shifted(self, by: usize) -> Span {
        Span {
            offset: self.offset + by,
            ..self
        }
    }

    /// Whether two spans share any byte.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.base == other.base
            && self.offset < other.offset + other.len
            && other.offset < self.offset + self.len
    }
}

/// The tensors of one instance and the memory they are charged.
pub struct TensorStore {
    slots: Vec<Slot>,
    free: Vec<u32>,
    used: u64,
    quota: u64,
}

impl TensorStore {
    pub fn new(quota: u64) -> Self {
        TensorStore {
            slots: Vec::new(),
            free: Vec::new(),
            used: 0,
            quota,
        }
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// Charge `bytes` to the quota, or refuse.
    pub fn charge(&mut self, bytes: u64, what: &str) -> Result<(), NnFault> {
        self.charge_with(bytes, || what.to_string())
    }

    /// As [`charge`](Self::charge), naming what needs the bytes only when
    /// they are refused (a hot path need not format a message each time).
    pub fn charge_with(
        &mut self,
        bytes: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), NnFault> {
        let total = self.used.saturating_add(bytes);
        if total > self.quota {
            return Err(NnFault::QuotaExceeded(format!(
                "{} needs {bytes} bytes; {} of the {} byte tensor quota are in use",
                what(),
                self.used,
                self.quota
            )));
        }
        self.used = total;
        Ok(())
    }

    pub fn uncharge(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// Refuses another tensor past [`MAX_TENSORS`].
    fn room_for_one(&self) -> Result<(), NnFault> {
        let live = self.slots.len() - self.free.len();
        if live >= MAX_TENSORS {
            return Err(NnFault::QuotaExceeded(format!(
                "an instance holds at most {MAX_TENSORS} tensors at once"
            )));
        }
        Ok(())
    }

    /// A zero-filled tensor, charged to the quota with its slot and
    /// description before anything is allocated.
    pub fn create(&mut self, desc: Desc) -> Result<TensorKey, NnFault> {
        self.room_for_one()?;
        let len = desc.byte_len()?;
        let overhead = SLOT_OVERHEAD + desc.heap_bytes();
        self.charge((len as u64).saturating_add(overhead), "tensor")?;
        let mut buf = Vec::new();
        if buf.try_reserve_exact(len).is_err() {
            self.uncharge(len as u64 + overhead);
            return Err(NnFault::QuotaExceeded(format!(
                "the host could not allocate {len} bytes"
            )));
        }
        buf.resize(len, 0u8);
        Ok(self.insert(Entry {
            desc,
            len,
            storage: Storage::Owned(buf.into_boxed_slice()),
            refs: 1,
            overhead,
        }))
    }

    /// A view of `base`'s bytes from `offset`.
    pub fn view(&mut self, base: TensorKey, offset: u64, desc: Desc) -> Result<TensorKey, NnFault> {
        self.room_for_one()?;
        let len = desc.byte_len()?;
        let entry = self.entry(base)?;
        let base_len = match entry.storage {
            Storage::Owned(_) => entry.len,
            Storage::View { .. } => {
                return Err(NnFault::invalid(
                    "a view cannot be made of a view; view the arena itself",
                ));
            }
        };
        let offset = usize::try_from(offset).map_err(|_| NnFault::invalid("offset too large"))?;
        if offset.checked_add(len).is_none_or(|end| end > base_len) {
            return Err(NnFault::invalid(format!(
                "view of {len} bytes at offset {offset} exceeds the {base_len} byte tensor"
            )));
        }
        if offset % desc.dtype.size() != 0 {
            return Err(NnFault::invalid(format!(
                "offset {offset} is not aligned to {}",
                desc.dtype.size()
            )));
        }
        let overhead = SLOT_OVERHEAD + desc.heap_bytes();
        self.charge(overhead, "tensor view")?;
        if let Err(e) = self.retain(base) {
            self.uncharge(overhead);
            return Err(e);
        }
        Ok(self.insert(Entry {
            desc,
            len,
            storage: Storage::View { base, offset },
            refs: 1,
            overhead,
        }))
    }

    fn insert(&mut self, entry: Entry) -> TensorKey {
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.entry = Some(entry);
                TensorKey {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: Some(entry),
                });
                TensorKey {
                    index: (self.slots.len() - 1) as u32,
                    generation: 0,
                }
            }
        }
    }

    fn entry(&self, key: TensorKey) -> Result<&Entry, NnFault> {
        self.slots
            .get(key.index as usize)
            .filter(|s| s.generation == key.generation)
            .and_then(|s| s.entry.as_ref())
            .ok_or_else(|| NnFault::StaleTensor(format!("tensor #{} no longer exists", key.index)))
    }

    pub fn desc(&self, key: TensorKey) -> Result<&Desc, NnFault> {
        Ok(&self.entry(key)?.desc)
    }

    /// Another holder of `key` (a view or a plan); pair with [`release`](Self::release).
    pub fn retain(&mut self, key: TensorKey) -> Result<(), NnFault> {
        self.entry(key)?;
        if let Some(e) = self.slots[key.index as usize].entry.as_mut() {
            e.refs += 1;
        }
        Ok(())
    }

    /// Drop one holder of `key`; frees the slot (and its base's hold) at zero.
    pub fn release(&mut self, key: TensorKey) {
        let Some(slot) = self
            .slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
        else {
            return;
        };
        let Some(entry) = slot.entry.as_mut() else {
            return;
        };
        entry.refs -= 1;
        if entry.refs > 0 {
            return;
        }
        let Some(entry) = slot.entry.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.uncharge(entry.overhead);
        match entry.storage {
            Storage::Owned(buf) => self.uncharge(buf.len() as u64),
            Storage::View { base, .. } => self.release(base),
        }
    }

    /// Where `key`'s bytes live.
    pub fn span(&self, key: TensorKey) -> Result<Span, NnFault> {
        let e = self.entry(key)?;
        Ok(match e.storage {
            Storage::Owned(_) => Span {
                base: key.index,
                offset: 0,
                len: e.len,
            },
            Storage::View { base, offset } => Span {
                base: base.index,
                offset,
                len: e.len,
            },
        })
    }

    fn base_buf(&self, index: u32) -> &[u8] {
        match self
            .slots
            .get(index as usize)
            .and_then(|s| s.entry.as_ref())
            .map(|e| &e.storage)
        {
            Some(Storage::Owned(b)) => b,
            _ => &[],
        }
    }

    pub fn bytes(&self, key: TensorKey) -> Result<&[u8], NnFault> {
        let s = self.span(key)?;
        self.base_buf(s.base)
            .get(s.offset..s.offset + s.len)
            .ok_or_else(|| NnFault::StaleTensor("tensor storage vanished".into()))
    }

    pub fn write(&mut self, key: TensorKey, offset: u64, data: &[u8]) -> Result<(), NnFault> {
        let s = self.span(key)?;
        let offset = usize::try_from(offset).map_err(|_| NnFault::invalid("offset too large"))?;
        if offset.checked_add(data.len()).is_none_or(|end| end > s.len) {
            return Err(NnFault::invalid(format!(
                "writing {} bytes at offset {offset} overruns the {} byte tensor",
                data.len(),
                s.len
            )));
        }
        let start = s.offset + offset;
        match self
            .slots
            .get_mut(s.base as usize)
            .and_then(|sl| sl.entry.as_mut())
            .map(|e| &mut e.storage)
        {
            Some(Storage::Owned(b)) => {
                b[start..start + data.len()].copy_from_slice(data);
                Ok(())
            }
            _ => Err(NnFault::StaleTensor("tensor storage vanished".into())),
        }
    }

    fn owned_mut(&mut self, base: u32) -> Option<&mut Box<[u8]>> {
        match self
            .slots
            .get_mut(base as usize)
            .and_then(|sl| sl.entry.as_mut())
            .map(|e| &mut e.storage)
        {
            Some(Storage::Owned(b)) => Some(b),
            _ => None,
        }
    }

    /// Bytes in owned slot `base` (0 for anything else).
    pub fn base_len(&self, base: u32) -> usize {
        self.base_buf(base).len()
    }

    /// The bytes of a span, which may lie in any lane of a widened base.
    pub fn span_bytes(&self, s: Span) -> Result<&[u8], NnFault> {
        self.base_buf(s.base)
            .get(s.offset..s.offset + s.len)
            .ok_or_else(|| NnFault::StaleTensor("an operand's storage is gone".into()))
    }

    /// Write `data` over a whole span, which may lie in any lane.
    pub fn write_span(&mut self, s: Span, data: &[u8]) -> Result<(), NnFault> {
        if data.len() != s.len {
            return Err(NnFault::invalid(format!(
                "{} bytes for a {} byte tensor",
                data.len(),
                s.len
            )));
        }
        self.owned_mut(s.base)
            .and_then(|b| b.get_mut(s.offset..s.offset + s.len))
            .ok_or_else(|| NnFault::StaleTensor("an operand's storage is gone".into()))?
            .copy_from_slice(data);
        Ok(())
    }

    /// Make room in owned slot `base` for `lanes` copies of its bytes, each
    /// starting as a copy of the current ones, charged to the quota. Spans
    /// [`shifted`](Span::shifted) by multiples of the returned stride address
    /// the lanes. Pair with [`narrow`](Self::narrow) before the guest runs again.
    pub fn widen(&mut self, base: u32, lanes: usize) -> Result<usize, NnFault> {
        let stride = self
            .owned_mut(base)
            .map(|b| b.len())
            .ok_or_else(|| NnFault::StaleTensor("a widened tensor is gone".into()))?;
        let extra = stride
            .checked_mul(lanes.saturating_sub(1))
            .ok_or_else(|| NnFault::invalid("batch too large"))?;
        self.charge(extra as u64, "a batch's lanes")?;
        let mut wide = Vec::new();
        if wide.try_reserve_exact(stride + extra).is_err() {
            self.uncharge(extra as u64);
            return Err(NnFault::QuotaExceeded(format!(
                "the host could not allocate {} bytes",
                stride + extra
            )));
        }
        if let Some(b) = self.owned_mut(base) {
            for _ in 0..lanes.max(1) {
                wide.extend_from_slice(b);
            }
            *b = wide.into_boxed_slice();
        }
        Ok(stride)
    }

    /// Undo [`widen`](Self::widen): the slot keeps lane `keep`'s bytes, as
    /// if the lanes had run one after another and `keep` had run last.
    pub fn narrow(&mut self, base: u32, stride: usize, keep: usize) {
        let Some(b) = self.owned_mut(base) else {
            return;
        };
        let lanes = b.len() / stride.max(1);
        if lanes <= 1 {
            return;
        }
        let at = keep.min(lanes - 1) * stride;
        let kept: Box<[u8]> = b[at..at + stride].into();
        *b = kept;
        self.uncharge((stride * (lanes - 1)) as u64);
    }

    fn check_owned(&self, s: &Span) -> Result<(), NnFault> {
        let ok = matches!(
            self.slots.get(s.base as usize).and_then(|sl| sl.entry.as_ref()).map(|e| &e.storage),
            Some(Storage::Owned(b)) if s.offset + s.len <= b.len()
        );
        if ok {
            Ok(())
        } else {
            Err(NnFault::StaleTensor("an operand's storage is gone".into()))
        }
    }

    /// Run `f` over `N` input spans and one output span that must not overlap
    /// any input. Spans come from [`span`](Self::span) of live tensors, which
    /// their holders keep alive.
    pub fn with_operands<const N: usize, R>(
        &mut self,
        inputs: [Span; N],
        output: Span,
        f: impl FnOnce([&[i8]; N], &mut [i8]) -> R,
    ) -> Result<R, NnFault> {
        self.check_spans(&inputs, &output)?;
        let slots = self.slots.as_mut_ptr();
        // SAFETY: see `raw`.
        unsafe {
            let ins: [&[i8]; N] = std::array::from_fn(|i| raw_shared(slots, &inputs[i]));
            Ok(f(ins, raw(slots, &output)))
        }
    }

    /// As [`with_operands`](Self::with_operands) for up to
    /// [`MAX_MANY`](Self::MAX_MANY) inputs (CONCATENATION).
    pub fn with_many<R>(
        &mut self,
        inputs: &[Span],
        output: Span,
        f: impl FnOnce(&[&[i8]], &mut [i8]) -> R,
    ) -> Result<R, NnFault> {
        if inputs.len() > Self::MAX_MANY {
            return Err(NnFault::invalid(format!(
                "{} inputs; at most {} are supported",
                inputs.len(),
                Self::MAX_MANY
            )));
        }
        self.check_spans(inputs, &output)?;
        let mut ins: [&[i8]; Self::MAX_MANY] = [&[]; Self::MAX_MANY];
        let slots = self.slots.as_mut_ptr();
        // SAFETY: see `raw`.
        unsafe {
            for (d, s) in ins.iter_mut().zip(inputs) {
                *d = raw_shared(slots, s);
            }
            Ok(f(&ins[..inputs.len()], raw(slots, &output)))
        }
    }

    pub const MAX_MANY: usize = 32;

    /// As [`with_operands`](Self::with_operands) for an operator with
    /// several outputs: none may overlap an input or another output.
    pub fn with_outputs<const N: usize, const M: usize, R>(
        &mut self,
        inputs: [Span; N],
        outputs: [Span; M],
        f: impl FnOnce([&[i8]; N], [&mut [i8]; M]) -> R,
    ) -> Result<R, NnFault> {
        for (i, o) in outputs.iter().enumerate() {
            self.check_spans(&inputs, o)?;
            if outputs[..i].iter().any(|p| p.overlaps(o)) {
                return Err(NnFault::invalid("two of an operator's outputs overlap"));
            }
        }
        let slots = self.slots.as_mut_ptr();
        // SAFETY: see `raw`; the outputs overlap neither an input nor each
        // other, so the mutable slices alias nothing.
        unsafe {
            let ins: [&[i8]; N] = std::array::from_fn(|i| raw_shared(slots, &inputs[i]));
            let outs: [&mut [i8]; M] = std::array::from_fn(|i| raw(slots, &outputs[i]));
            Ok(f(ins, outs))
        }
    }

    fn check_spans(&self, inputs: &[Span], output: &Span) -> Result<(), NnFault> {
        for s in inputs {
            self.check_owned(s)?;
            if s.overlaps(output) {
                return Err(NnFault::invalid(
                    "an operator's output overlaps one of its inputs",
                ));
            }
        }
        self.check_owned(output)
    }
}

/// The bytes of a checked span as a slice that outlives the borrow of the store.
///
/// # Safety
/// `slots` comes from `&mut self.slots` of the store, and `s` passed
/// `check_spans` in the same call: it lies inside a live owned buffer, and the
/// one output span overlaps no input span, so the single mutable slice aliases
/// nothing. The buffers are boxed slices that the caller's closure cannot
/// reach (it has no access to the store), so they stay put while borrowed.
unsafe fn raw<'a>(slots: *mut Slot, s: &Span) -> &'a mut [i8] {
    match unsafe { &mut (*slots.add(s.base as usize)).entry } {
        Some(Entry {
            storage: Storage::Owned(b),
            ..
        }) => unsafe {
            std::slice::from_raw_parts_mut(b.as_mut_ptr().add(s.offset) as *mut i8, s.len)
        },
        _ => &mut [],
    }
}

/// As [`raw`], read-only; inputs may repeat (e.g. `x + x`), so no `&mut` is made.
unsafe fn raw_shared<'a>(slots: *mut Slot, s: &Span) -> &'a [i8] {
    match unsafe { &(*slots.add(s.base as usize)).entry } {
        Some(Entry {
            storage: Storage::Owned(b),
            ..
        }) => unsafe { std::slice::from_raw_parts(b.as_ptr().add(s.offset) as *const i8, s.len) },
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i8s(shape: &[usize]) -> Desc {
        Desc {
            dtype: DType::I8,
            shape: shape.to_vec(),
            quant: None,
        }
    }

    /// What a rank-1 tensor's slot and description are charged.
    const SLOT: u64 = SLOT_OVERHEAD + 8;

    #[test]
    fn quota_is_charged_and_released() {
        let mut st = TensorStore::new(100 + SLOT);
        let a = st.create(i8s(&[60])).unwrap();
        assert_eq!(st.used(), 60 + SLOT);
        assert!(matches!(
            st.create(i8s(&[60])),
            Err(NnFault::QuotaExceeded(_))
        ));
        st.release(a);
        assert_eq!(st.used(), 0);
        st.create(i8s(&[60])).unwrap();
    }

    #[test]
    fn huge_and_overflowing_shapes_are_refused() {
        let mut st = TensorStore::new(1 << 20);
        assert!(matches!(
            st.create(i8s(&[1 << 40])),
            Err(NnFault::QuotaExceeded(_))
        ));
        assert!(matches!(
            st.create(i8s(&[usize::MAX, 2])),
            Err(NnFault::Invalid(_))
        ));
        // Found by the `nn_ops` fuzz target: an empty tensor whose other
        // dimensions multiply past 2^64 overflowed a concatenation's sizes
        // (a panic in a debug host). Such a shape is refused.
        assert!(matches!(
            st.create(i8s(&[0, 65535, 65535, 65535, 65535, 65535])),
            Err(NnFault::Invalid(_))
        ));
        assert!(st.create(i8s(&[0, 65535, 65535])).is_ok());
    }

    #[test]
    fn views_keep_their_base_alive_and_stale_keys_fail() {
        let mut st = TensorStore::new(1000 + 4 * SLOT);
        let arena = st.create(i8s(&[100])).unwrap();
        let v = st.view(arena, 10, i8s(&[5])).unwrap();
        st.write(v, 0, &[1, 2, 3, 4, 5]).unwrap();
        st.release(arena);
        assert_eq!(st.bytes(v).unwrap(), &[1, 2, 3, 4, 5]);
        // The arena's slot lives on under the view.
        assert_eq!(st.used(), 100 + 2 * SLOT);
        st.release(v);
        assert_eq!(st.used(), 0);
        assert!(matches!(st.bytes(v), Err(NnFault::StaleTensor(_))));
        // A new tensor reusing the slot does not revive the old key.
        let _c = st.create(i8s(&[4])).unwrap();
        assert!(matches!(st.bytes(arena), Err(NnFault::StaleTensor(_))));
    }

    #[test]
    fn views_are_bounded_and_not_nested() {
        let mut st = TensorStore::new(1000 + 4 * SLOT);
        let arena = st.create(i8s(&[100])).unwrap();
        assert!(st.view(arena, 96, i8s(&[5])).is_err());
        assert!(st.view(arena, u64::MAX, i8s(&[5])).is_err());
        let v = st.view(arena, 0, i8s(&[5])).unwrap();
        assert!(st.view(v, 0, i8s(&[1])).is_err());
        assert!(st.write(v, 3, &[0, 0, 0]).is_err());
    }

    #[test]
    fn overlapping_operands_are_refused() {
        let mut st = TensorStore::new(1000 + 4 * SLOT);
        let arena = st.create(i8s(&[100])).unwrap();
        let a = st.view(arena, 0, i8s(&[10])).unwrap();
        let b = st.view(arena, 5, i8s(&[10])).unwrap();
        let c = st.view(arena, 10, i8s(&[10])).unwrap();
        let (sa, sb, sc) = (
            st.span(a).unwrap(),
            st.span(b).unwrap(),
            st.span(c).unwrap(),
        );
        assert!(st.with_operands([sa], sb, |_, _| ()).is_err());
        st.write(a, 0, &[7; 10]).unwrap();
        st.with_operands([sa], sc, |[i], o| o.copy_from_slice(i))
            .unwrap();
        assert_eq!(st.bytes(c).unwrap(), &[7; 10]);
    }
}
