//! What both model loaders ([`crate::tflite`] and [`crate::onnx`]) share:
//! why a model was refused, and what its input and output tensors are.

use std::fmt;

use crate::nn::{Dtype, NnError};

/// Why a model could not be loaded.
#[derive(Debug, Clone)]
pub enum LoadError {
    /// The bytes are not a well-formed model of the loader's format.
    Malformed(String),
    /// Well-formed, but uses something this loader does not support.
    Unsupported(String),
    /// Operator `index` is of a type the host has no kernel for.
    UnsupportedOp { index: usize, name: String },
    /// The host refused to create a tensor or prepare an operator.
    Host { context: String, error: NnError },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Malformed(m) => write!(f, "malformed model: {m}"),
            LoadError::Unsupported(m) => write!(f, "unsupported model: {m}"),
            LoadError::UnsupportedOp { index, name } => {
                write!(f, "operator {index} ({name}) is not supported")
            }
            LoadError::Host { context, error } => write!(f, "{context}: {}", error.message()),
        }
    }
}

/// What the model's input or output tensor is.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<u32>,
    pub dtype: Dtype,
    pub scale: f32,
    pub zero_point: i32,
    pub byte_len: usize,
}
