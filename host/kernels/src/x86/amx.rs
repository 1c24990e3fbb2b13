//! Intel AMX kernels: CONV_2D and FULLY_CONNECTED through the tile unit's
//! `tdpbusd`, which multiplies sixteen patches by sixteen output channels
//! over 64 bytes of depth in one instruction (16,384 multiply-accumulates,
//! against 64 for AVX-512's `vpdpbusd`). Everything else is the AVX-512
//! set's: the tile unit only speeds up the GEMM.
//!
//! The weights are the AVX-512 set's own packing: a block of 16 rows stores
//! each group of 4 depth bytes as 64 consecutive bytes, which is exactly a
//! tile of B rows in the layout `tdpbusd` reads. The patches are loaded
//! straight from the converted input when sixteen of them lie at one
//! stride (pointwise layers, and rows of a conv whose width is a multiple
//! of 16); groups that straddle two rows are copied side by side first.
//! Layers with patches shallower than 64 bytes, or fewer than sixteen
//! pixels, stay on the AVX-512 GEMM: measured here, the tiles did not pay
//! for themselves there (VWW's early pointwise layers). The sums are the
//! same exact int32 sums `vpdpbusd` makes, requantized by the same epilogue.
//!
//! Tile registers need the operating system's leave (Linux's
//! `ARCH_REQ_XCOMP_PERM`), asked for once, and a tile configuration loaded
//! by the thread that uses them: [`Tiles`] loads it for one layer's runs and
//! releases the tiles when the layer is done. Rust has no stable AMX
//! intrinsics, so the instructions are inline assembly.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::OnceLock;

use crate::conv::Conv2d;
use crate::drive::blocks;
use crate::error::KernelError;
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, Runs};
use crate::x86::avx512;
use crate::x86::requant::{Epilogue, epilogue};

/// Pixels (rows of A) per tile, and the GEMM driver's group.
const TILE_ROWS: usize = 16;
/// Bytes of depth per tile row.
const TILE_DEPTH: usize = 64;
/// The deepest patches copied side by side when they do not lie at one
/// stride (ResNet's deepest: 3·3·64 = 576 bytes); deeper ones take the
/// AVX-512 GEMM.
const STAGE_BYTES: usize = 1024;

pub fn supported() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| avx512::supported() && cpu_has_amx_int8() && tile_data_permitted())
}

fn cpu_has_amx_int8() -> bool {
    if __cpuid(0).eax < 7 {
        return false;
    }
    let leaf = __cpuid_count(7, 0);
    // EDX bit 24: AMX-TILE; bit 25: AMX-INT8.
    (leaf.edx >> 24) & 3 == 3
}

/// Asks Linux for the tile data state. A kernel that does not know the
/// request, or a process whose signal stacks are too small for the state,
/// says no, and the set is then unavailable.
#[cfg(target_os = "linux")]
fn tile_data_permitted() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: this arch_prctl request reads and writes no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn tile_data_permitted() -> bool {
    false
}

/// The 64-byte operand of `ldtilecfg`.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    /// Bytes per row of each tile register.
    colsb: [u16; 16],
    /// Rows of each tile register.
    rows: [u8; 16],
}

// Tile registers: tmm0..tmm3 accumulate up to four blocks of 16 channels;
// tmm4 and tmm5 hold 64 bytes of depth of the patches and of a block's
// weights; tmm6 and tmm7 hold a run's last `tail` bytes (under 64).

/// The tiles configured on this thread for runs of `run_bytes`, released
/// when dropped. Not `Send`: the configuration belongs to the thread that
/// loaded it. One at a time per thread (this module makes no other).
struct Tiles {
    run_bytes: usize,
    _thread: PhantomData<*const ()>,
}

impl Tiles {
    /// # Safety
    /// [`supported`] must have returned true, and no other `Tiles` may be
    /// alive on this thread.
    unsafe fn load(run_bytes: usize) -> Tiles {
        let tail = run_bytes % TILE_DEPTH;
        let mut cfg = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        for t in 0..6 {
            cfg.colsb[t] = TILE_DEPTH as u16;
            cfg.rows[t] = TILE_ROWS as u8;
        }
        if tail > 0 {
            cfg.colsb[6] = tail as u16;
            cfg.rows[6] = TILE_ROWS as u8;
            cfg.colsb[7] = TILE_DEPTH as u16;
            cfg.rows[7] = (tail / 4) as u8;
        }
        // SAFETY: the CPU has AMX and the OS allows its state (the caller
        // promises); the operand is a valid palette-1 configuration.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) &cfg as *const TileConfig, options(nostack, readonly))
        };
        Tiles {
            run_bytes,
            _thread: PhantomData,
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: tiles were configured on this thread (`load`).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// Loads tiles lazily, for the runs the first group of patches comes with:
/// the driver decides whether windows are read in place, which sets the
/// run length.
struct LazyTiles(Cell<Option<Tiles>>);

impl LazyTiles {
    /// # Safety
    /// As for [`Tiles::load`], when the tiles are first used.
    unsafe fn new() -> LazyTiles {
        LazyTiles(Cell::new(None))
    }

    fn with<R>(&self, run_bytes: usize, f: impl FnOnce(&Tiles) -> R) -> R {
        let tiles = match self.0.take() {
            Some(t) if t.run_bytes == run_bytes => t,
            other => {
                // Release the old configuration before loading the new one.
                drop(other);
                // SAFETY: `new`'s caller promised AMX; the old tiles are gone.
                unsafe { Tiles::load(run_bytes) }
            }
        };
        let r = f(&tiles);
        self.0.set(Some(tiles));
        r
    }
}

/// Loads tile `$a` (16 patches, `$xs` bytes apart) and multiplies it into
/// the accumulators of `$nb` blocks, each block's weights (rows `$ws`
/// bytes apart) loaded into tile `$b` in turn.
macro_rules! dp_blocks {
    ($nb:expr, $a:literal, $b:literal, $x:expr, $xs:expr, $w:expr, $ws:expr) => {{
        asm!(concat!("tileloadd ", $a, ", [{x} + {xs}*1]"), x = in(reg) $x, xs = in(reg) $xs, options(nostack, readonly));
        asm!(concat!("tileloadd ", $b, ", [{w} + {ws}*1]"), concat!("tdpbusd tmm0, ", $a, ", ", $b), w = in(reg) $w[0], ws = in(reg) $ws, options(nostack, readonly));
        if $nb > 1 {
            asm!(concat!("tileloadd ", $b, ", [{w} + {ws}*1]"), concat!("tdpbusd tmm1, ", $a, ", ", $b), w = in(reg) $w[1], ws = in(reg) $ws, options(nostack, readonly));
        }
        if $nb > 2 {
            asm!(concat!("tileloadd ", $b, ", [{w} + {ws}*1]"), concat!("tdpbusd tmm2, ", $a, ", ", $b), w = in(reg) $w[2], ws = in(reg) $ws, options(nostack, readonly));
        }
        if $nb > 3 {
            asm!(concat!("tileloadd ", $b, ", [{w} + {ws}*1]"), concat!("tdpbusd tmm3, ", $a, ", ", $b), w = in(reg) $w[3], ws = in(reg) $ws, options(nostack, readonly));
        }
    }};
}

/// [`dp_blocks`] for `$nb` (1 to 4) known only at run time: each count
/// gets its own straight-line code.
macro_rules! dp_chunk {
    ($nb:expr, $a:literal, $b:literal, $x:expr, $xs:expr, $w:expr, $ws:expr) => {
        match $nb {
            1 => dp_blocks!(1, $a, $b, $x, $xs, $w, $ws),
            2 => dp_blocks!(2, $a, $b, $x, $xs, $w, $ws),
            3 => dp_blocks!(3, $a, $b, $x, $xs, $w, $ws),
            _ => dp_blocks!(4, $a, $b, $x, $xs, $w, $ws),
        }
    };
}

/// Sixteen patches against every weight block, requantized into `out`
/// (sixteen pixels of `w.rows` channels); `acc` is scratch for 16 rows of
/// `w.padded_rows()` accumulators. Patches at one stride go through the
/// tiles, others through the AVX-512 GEMM.
fn gemm16(
    tiles: &Tiles,
    cols: [&[u8]; TILE_ROWS],
    runs: Runs,
    w: &PackedI8Rows,
    epi: &Epilogue,
    acc: &mut [i32],
    out: &mut [i8],
) {
    let c = w.rows;
    runs.check(&cols, w);
    assert!(w.data.len() >= w.blocks * w.k4 * I8_LANES);
    assert!(out.len() >= TILE_ROWS * c && w.blocks * 16 >= c);
    let stride = w.padded_rows();
    assert!(acc.len() >= TILE_ROWS * stride && stride >= w.blocks * 16);
    assert_eq!(tiles.run_bytes, 4 * runs.len4);
    let base = cols[0].as_ptr() as usize;
    let step = (cols[1].as_ptr() as usize).wrapping_sub(base);
    let even = step > 0
        && cols
            .iter()
            .enumerate()
            .all(|(p, col)| col.as_ptr() as usize == base.wrapping_add(p.wrapping_mul(step)));
    if even {
        // SAFETY: the patches lie `step` apart, each holding `runs`.
        unsafe { tiles_gemm(cols[0].as_ptr(), step, runs, w, acc, stride) };
    } else if 4 * w.k4 <= STAGE_BYTES {
        // Patches that straddle rows of output pixels are copied side by
        // side, each run where it was, which keeps the runs' tiles. Only
        // the copied runs are read back, so the stage needs no zeroing.
        let mut stage = std::mem::MaybeUninit::<[u8; TILE_ROWS * STAGE_BYTES]>::uninit();
        let stage = stage.as_mut_ptr() as *mut u8;
        let kp = 4 * w.k4;
        let staged = Runs {
            count: runs.count,
            step: 4 * runs.len4,
            len4: runs.len4,
        };
        // SAFETY: AVX-512 BW is part of `supported`; each run copied lies
        // inside its patch (`runs.check`) and inside the stage (`kp`
        // bytes a patch, at most `STAGE_BYTES`).
        unsafe {
            for (p, col) in cols.iter().enumerate() {
                for r in 0..runs.count {
                    copy_run(
                        col.as_ptr().add(r * runs.step),
                        stage.add(p * kp + r * staged.step),
                        staged.step,
                    );
                }
            }
            tiles_gemm(stage, kp, staged, w, acc, stride);
        }
    } else {
        // Eight pixels at a time, as the AVX-512 set takes them.
        for (q, out) in out[..TILE_ROWS * c].chunks_exact_mut(8 * c).enumerate() {
            // SAFETY: AVX-512 VNNI is part of `supported` (a `Tiles` exists).
            unsafe {
                avx512::gemm::<8>(std::array::from_fn(|i| cols[8 * q + i]), runs, w, epi, out)
            };
        }
        return;
    }
    // SAFETY: AVX-512 F, BW and VL are part of `supported`.
    unsafe { epi.rows512(acc, stride, &mut out[..TILE_ROWS * c], TILE_ROWS) };
}

/// Copies `n` bytes 64 at a time, the last under a mask.
///
/// # Safety
/// The CPU must support AVX-512 BW; `src` and `dst` must hold `n` bytes.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn copy_run(src: *const u8, dst: *mut u8, n: usize) {
    let mut i = 0;
    while i < n {
        let left = n - i;
        let k: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
        // SAFETY: the mask keeps both inside their `n` bytes.
        unsafe {
            let v = _mm512_maskz_loadu_epi8(k, src.add(i) as *const i8);
            _mm512_mask_storeu_epi8(dst.add(i) as *mut i8, k, v);
        }
        i += 64;
    }
}

/// The sums of sixteen patches, the `p`-th at `x + p·step`, against every
/// weight block, stored as sixteen rows of `stride` accumulators in `acc`.
///
/// # Safety
/// Tiles must be configured on this thread for `runs` ([`Tiles`]), `w`
/// checked as [`gemm16`] checks it, `acc` must hold `16·stride` values,
/// `stride >= 16·w.blocks`, and every patch must hold `runs`.
unsafe fn tiles_gemm(
    x0: *const u8,
    step: usize,
    runs: Runs,
    w: &PackedI8Rows,
    acc: &mut [i32],
    stride: usize,
) {
    let full = 4 * runs.len4 / TILE_DEPTH;
    let tail = 4 * runs.len4 % TILE_DEPTH;
    // Bytes from one group of 4 depth bytes of a block to the next, and
    // from one block to the next.
    let (wrow, wblock) = (I8_LANES, w.k4 * I8_LANES);
    let mut first = 0;
    while first < w.blocks {
        let nb = (w.blocks - first).min(4);
        // SAFETY: patch `p`'s run `r` is read at `x0 + p·step + r·runs.step
        // + 64j` for up to 64 bytes inside the run (the caller promises the
        // patches); each block's weight rows lie inside its `k4` groups;
        // accumulators are stored for sixteen rows of `stride` inside
        // `acc`; the tiles are configured for these runs.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for r in 0..runs.count {
                let x = x0.add(r * runs.step);
                let mut wp: [*const i8; 4] = std::array::from_fn(|b| {
                    w.data
                        .as_ptr()
                        .add((first + b.min(nb - 1)) * wblock + r * runs.len4 * wrow)
                });
                for j in 0..full {
                    let xj = x.add(j * TILE_DEPTH);
                    dp_chunk!(nb, "tmm4", "tmm5", xj, step, wp, wrow);
                    for q in wp.iter_mut() {
                        *q = q.add(TILE_DEPTH / 4 * wrow);
                    }
                }
                if tail > 0 {
                    let xj = x.add(full * TILE_DEPTH);
                    dp_chunk!(nb, "tmm6", "tmm7", xj, step, wp, wrow);
                }
            }
            let dst = acc.as_mut_ptr().add(first * 16);
            let ds = stride * 4;
            asm!("tilestored [{d} + {s}*1], tmm0", d = in(reg) dst, s = in(reg) ds, options(nostack));
            if nb > 1 {
                asm!("tilestored [{d} + {s}*1], tmm1", d = in(reg) dst.add(16), s = in(reg) ds, options(nostack));
            }
            if nb > 2 {
                asm!("tilestored [{d} + {s}*1], tmm2", d = in(reg) dst.add(32), s = in(reg) ds, options(nostack));
            }
            if nb > 3 {
                asm!("tilestored [{d} + {s}*1], tmm3", d = in(reg) dst.add(48), s = in(reg) ds, options(nostack));
            }
        }
        first += nb;
    }
}

/// The fewest pixels a conv layer runs through the tiles: a layer of 13 to
/// 15 fills its one group of sixteen by repeating its last patch, which
/// made WW's 15-pixel layer faster (native 10.6 → 10.1 µs). The AVX-512
/// GEMM computes sixteen pixels for those too (groups of four, the last
/// overlapping), but only twelve for twelve, and every pixel computed is
/// also requantized, which in these small layers costs about what their
/// products do. (With eight as the bound, VWW's 9-pixel layers measured
/// the same either way, 137.7 and 137.8 µs; the bound is that reasoning.)
const SHORT_MIN: usize = 13;

/// This set's pieces for the block-GEMM driver, sixteen pixels at a time;
/// single pixels go through the AVX-512 GEMV.
// SAFETY (closures): only built after `supported` returned true.
macro_rules! micro {
    ($k:expr, $tiles:expr) => {
        blocks::Micro::<TILE_ROWS, _, _, _> {
            to_bytes: avx512::to_u8,
            gemm_p: |cols, runs, w, acc, out| {
                $tiles.with(4 * runs.len4, |t| {
                    gemm16(t, cols, runs, w, &epilogue!($k), acc, out)
                })
            },
            gemm1: |col, runs, w, _acc, out| unsafe {
                avx512::gemv(col, runs, w, &epilogue!($k), out)
            },
            short_min: SHORT_MIN,
        }
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I8(packed)) = k.packed.as_deref() else {
        return avx512::conv2d(k, input, output);
    };
    // A layer of fewer than `SHORT_MIN` pixels would go a pixel at a time,
    // and patches shallower than a tile row leave the tiles mostly empty.
    if !supported()
        || k.output.n * k.output.h * k.output.w < SHORT_MIN
        || 4 * packed.k4 < TILE_DEPTH
    {
        return avx512::conv2d(k, input, output);
    }
    // SAFETY: `supported` said yes; kernels do not nest on a thread.
    let tiles = unsafe { LazyTiles::new() };
    blocks::conv2d(k, packed, input, output, micro!(k, tiles))
}

pub fn fully_connected(
    k: &FullyConnected,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let Some(Packed::I8(packed)) = &k.packed else {
        return avx512::fully_connected(k, input, output);
    };
    if !supported() || input.len() < TILE_ROWS * k.depth || 4 * packed.k4 < TILE_DEPTH {
        return avx512::fully_connected(k, input, output);
    }
    // SAFETY: as in `conv2d`.
    let tiles = unsafe { LazyTiles::new() };
    blocks::fully_connected(k, packed, input, output, micro!(k, tiles))
}
