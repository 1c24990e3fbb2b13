//! The LiteRT reference fixture of the sequence operators
//! (`tests/fixtures/sequence_ops/make.py` says how it was made), read for
//! the tests of [`crate::lstm`] and [`crate::batch_matmul`].

use serde_json::Value;

pub(crate) fn reference() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/sequence_ops/reference.json"
    ))
    .expect("fixture parses")
}

pub(crate) fn ints<T: TryFrom<i64>>(v: &Value) -> Vec<T> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| {
            T::try_from(x.as_i64().expect("an integer"))
                .ok()
                .expect("in range")
        })
        .collect()
}

pub(crate) fn quant(v: &Value) -> (f32, i32) {
    (
        v[0].as_f64().expect("scale") as f32,
        v[1].as_i64().expect("zero point") as i32,
    )
}
