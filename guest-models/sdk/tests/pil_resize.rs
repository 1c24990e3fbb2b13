//! The vision plugins' preprocessing against the reference pipeline's, byte
//! for byte: decode, centre square, and Pillow's bilinear resize of each
//! sample image (fixtures made by tests/fixtures/pil_resize/make_fixture.py).
#![cfg(feature = "vision")]

use gatehouse_sdk::vision;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn resize_equals_pillow_on_every_sample_image() {
    for stem in ["astronaut", "chelsea", "coffee"] {
        let png = std::fs::read(root().join(format!("examples/data/images/{stem}.png")))
            .expect("sample image");
        let square = vision::decode(&png).expect("decodes").centre_square();
        for side in [96usize, 32] {
            let want =
                std::fs::read(root().join(format!("tests/fixtures/pil_resize/{stem}_{side}.rgb")))
                    .expect("fixture");
            let got = square.resize_bilinear(side, side);
            assert_eq!(got.pixels.len(), want.len());
            let differ = got.pixels.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ, 0,
                "{stem} at {side}: {differ} bytes differ from Pillow"
            );
        }
    }
}
