//! Images as cameras send them: PNG and JPEG, including headers that claim
//! 100,000 × 100,000 pixels. Decoding is refused past the pixel limit
//! before it allocates; what decodes is cropped and resized as the vision
//! plugins do.
#![no_main]

use gatehouse_sdk::vision;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rgb) = vision::decode(data) else {
        return;
    };
    let square = rgb.centre_square();
    let small = square.resize_bilinear(32, 32);
    assert_eq!(small.to_int8_offset().len(), 32 * 32 * 3);
});
