//! One table of kernel functions per instruction set, chosen once at start.
//!
//! The runtime asks for [`from_env`] when it builds its engine; prepared
//! operators then call through the table, so a run never re-checks the CPU.
//! `GATEHOUSE_KERNELS=scalar|avx2|avx512|amx|neon|neon-dot` forces a path, which is how
//! tests pin each one.

use crate::add::{Add, add_scalar};
use crate::conv::{Conv2d, conv2d_scalar};
use crate::depthwise::{DepthwiseConv2d, depthwise_conv2d_scalar};
use crate::error::KernelError;
use crate::fully_connected::{FullyConnected, fully_connected_scalar};
use crate::pack::WeightLayout;
use crate::pooling::{Pool2d, average_pool2d_scalar, max_pool2d_scalar};
use crate::softmax::{Softmax, softmax_scalar};

/// The environment variable that forces a kernel path.
pub const ENV: &str = "GATEHOUSE_KERNELS";

type Unary<K> = fn(&K, &[i8], &mut [i8]) -> Result<(), KernelError>;

/// Every kernel for one instruction set.
pub struct KernelSet {
    /// `scalar`, `avx2`, `avx512`, `amx`, `neon` or `neon-dot`.
    pub name: &'static str,
    /// Whether this CPU can run the set.
    pub supported: fn() -> bool,
    /// The weight layout its conv and fully connected kernels read.
    pub layout: WeightLayout,
    /// Whether its ADD reads a precomputed table (`AddSpec::table_from`).
    pub add_table: bool,
    /// Which layers are worth splitting over threads with this set.
    pub split: Split,
    pub conv2d: Unary<Conv2d>,
    pub depthwise_conv2d: Unary<DepthwiseConv2d>,
    pub fully_connected: Unary<FullyConnected>,
    pub average_pool2d: Unary<Pool2d>,
    pub max_pool2d: Unary<Pool2d>,
    pub add: fn(&Add, &[i8], &[i8], &mut [i8]) -> Result<(), KernelError>,
    pub softmax: Unary<Softmax>,
}

impl std::fmt::Debug for KernelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSet")
            .field("name", &self.name)
            .finish()
    }
}

/// Which layers a kernel set splits over threads: each part's activations
/// cross to another core's cache and a helper must take it up, and the
/// faster a set computes, the less time there is to hide that in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// The least multiply-accumulates per byte of the layer's input and
    /// output.
    pub macs_per_byte: u64,
    /// The fewest multiply-accumulates worth a part of its own.
    pub part_macs: u64,
    /// The fewest output pixels worth a part of its own: the GEMMs take
    /// pixels four or eight at a time.
    pub part_pixels: usize,
}

/// [`KernelSet::split`] for the vector sets without tiles but AVX2.
/// Pointwise layers of MobileNet (about 16 MACs per byte) were slower
/// split on two cores, and so, once the AVX-512 GEMM took four blocks of
/// channels at a time, were KWS's (32: 57 µs on one thread, 77 on two);
/// ResNet's 3x3 convs (about 70) were faster. With every layer split in
/// parts of 32 K MACs, streaming WW went from 8.2 to 10.3 µs on two threads.
pub const SPLIT: Split = Split {
    macs_per_byte: 48,
    part_macs: 256 * 1024,
    part_pixels: 32,
};

/// The reference: portable, and the authority every other set is tested against.
pub static SCALAR: KernelSet = KernelSet {
    name: "scalar",
    supported: || true,
    layout: WeightLayout::Original,
    add_table: false,
    split: SPLIT,
    conv2d: conv2d_scalar,
    depthwise_conv2d: depthwise_conv2d_scalar,
    fully_connected: fully_connected_scalar,
    average_pool2d: average_pool2d_scalar,
    max_pool2d: max_pool2d_scalar,
    add: add_scalar,
    softmax: softmax_scalar,
};

/// x86-64 with AVX2: vector conv, depthwise, fully connected and add; the rest scalar.
#[cfg(target_arch = "x86_64")]
pub static AVX2: KernelSet = KernelSet {
    name: "avx2",
    supported: crate::x86::avx2::supported,
    layout: WeightLayout::I16Pairs,
    add_table: true,
    // Three times slower than AVX-512, AVX2 gains from splitting every
    // layer in small parts, as XNNPACK does: at two threads VWW took 186
    // µs against 247 with the bounds of [`SPLIT`], KWS 60 against 83,
    // ResNet 156 against 170, streaming WW 18.4 against 19.6. Parts of 4
    // pixels rather than 8 split VWW's last 3x3 layers too: VWW 169 -> 167
    // µs, streaming WW 17.0 -> 16.0, ResNet 142 -> 136 (in the plugin).
    split: Split {
        macs_per_byte: 0,
        part_macs: 32 * 1024,
        part_pixels: 4,
    },
    conv2d: crate::x86::avx2::conv2d,
    depthwise_conv2d: crate::x86::avx2::depthwise_conv2d,
    fully_connected: crate::x86::avx2::fully_connected,
    average_pool2d: crate::pooling::average_pool2d,
    max_pool2d: crate::pooling::max_pool2d,
    add: crate::x86::add::add,
    softmax: softmax_scalar,
};

/// x86-64 with AVX-512 VNNI: `vpdpbusd` conv and fully connected.
#[cfg(target_arch = "x86_64")]
pub static AVX512: KernelSet = KernelSet {
    name: "avx512",
    supported: crate::x86::avx512::supported,
    layout: WeightLayout::I8Rows,
    add_table: true,
    split: SPLIT,
    conv2d: crate::x86::avx512::conv2d,
    depthwise_conv2d: crate::x86::avx512::depthwise_conv2d,
    fully_connected: crate::x86::avx512::fully_connected,
    average_pool2d: crate::pooling::average_pool2d,
    max_pool2d: crate::pooling::max_pool2d,
    add: crate::x86::avx512::add,
    softmax: softmax_scalar,
};

/// x86-64 with AMX-INT8: `tdpbusd` tiles for conv and fully connected,
/// the rest AVX-512's.
#[cfg(target_arch = "x86_64")]
pub static AMX: KernelSet = KernelSet {
    name: "amx",
    supported: crate::x86::amx::supported,
    layout: WeightLayout::I8Rows,
    add_table: true,
    // The tiles finish a part about as fast as the other core fetches its
    // activations. ResNet on two threads took 65 µs with its 3x3 layers
    // (about 70 MACs a byte) split, 78 with only its 8x8 64 -> 64 layer
    // (288) split, and 60 to 62 with none split, as on one thread.
    split: Split {
        macs_per_byte: 512,
        ..SPLIT
    },
    conv2d: crate::x86::amx::conv2d,
    depthwise_conv2d: crate::x86::avx512::depthwise_conv2d,
    fully_connected: crate::x86::amx::fully_connected,
    average_pool2d: crate::pooling::average_pool2d,
    max_pool2d: crate::pooling::max_pool2d,
    add: crate::x86::avx512::add,
    softmax: softmax_scalar,
};

/// aarch64 NEON: `smlal` conv and fully connected over i16 rows, vector
/// depthwise and requantization.
#[cfg(target_arch = "aarch64")]
pub static NEON: KernelSet = KernelSet {
    name: "neon",
    supported: crate::arm::neon::supported,
    layout: WeightLayout::I16Rows,
    add_table: true,
    split: SPLIT,
    conv2d: crate::arm::neon::conv2d,
    depthwise_conv2d: crate::arm::neon::depthwise_conv2d,
    fully_connected: crate::arm::neon::fully_connected,
    average_pool2d: crate::pooling::average_pool2d,
    max_pool2d: crate::pooling::max_pool2d,
    add: crate::arm::add::add,
    softmax: softmax_scalar,
};

/// aarch64 with the dot-product extension: `sdot` conv and fully connected.
#[cfg(target_arch = "aarch64")]
pub static NEON_DOT: KernelSet = KernelSet {
    name: "neon-dot",
    supported: crate::arm::dot::supported,
    layout: WeightLayout::I8RowsSigned,
    add_table: true,
    split: SPLIT,
    conv2d: crate::arm::dot::conv2d,
    depthwise_conv2d: crate::arm::dot::depthwise_conv2d,
    fully_connected: crate::arm::dot::fully_connected,
    average_pool2d: crate::pooling::average_pool2d,
    max_pool2d: crate::pooling::max_pool2d,
    add: crate::arm::add::add,
    softmax: softmax_scalar,
};

/// Every set compiled into this build, best first.
pub fn all() -> &'static [&'static KernelSet] {
    #[cfg(target_arch = "x86_64")]
    static ALL: [&KernelSet; 4] = [&AMX, &AVX512, &AVX2, &SCALAR];
    #[cfg(target_arch = "aarch64")]
    static ALL: [&KernelSet; 3] = [&NEON_DOT, &NEON, &SCALAR];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    static ALL: [&KernelSet; 1] = [&SCALAR];
    &ALL
}

/// The sets this CPU can run, best first.
pub fn available() -> impl Iterator<Item = &'static KernelSet> {
    all().iter().copied().filter(|k| (k.supported)())
}

/// The set called `name`, if it is compiled in and this CPU runs it.
pub fn by_name(name: &str) -> Result<&'static KernelSet, KernelError> {
    let known: Vec<&str> = all().iter().map(|k| k.name).collect();
    let set = all().iter().find(|k| k.name == name).ok_or_else(|| {
        KernelError::new(
            "dispatch",
            format!("unknown kernel set {name:?}; this build has {known:?}"),
        )
    })?;
    if !(set.supported)() {
        return Err(KernelError::new(
            "dispatch",
            format!("this CPU cannot run the {name} kernels"),
        ));
    }
    Ok(set)
}

/// The best set for this CPU, unless `GATEHOUSE_KERNELS` names one.
pub fn from_env() -> Result<&'static KernelSet, KernelError> {
    match std::env::var(ENV) {
        Ok(name) if !name.is_empty() => by_name(&name),
        _ => Ok(available().next().unwrap_or(&SCALAR)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_available() {
        assert_eq!(by_name("scalar").unwrap().name, "scalar");
        assert!(available().any(|k| k.name == "scalar"));
        assert!(
            by_name("avx9000")
                .unwrap_err()
                .to_string()
                .contains("unknown kernel set")
        );
    }
}
