//! `describe=true`: instead of running the model, say what it is and what
//! it costs, as JSON in the output bytes (`gatehouse describe --model`).
//! The model is read here, in the sandbox, like any model: its bytes are
//! untrusted and the host never parses them.

use gatehouse_sdk::model::TensorInfo;
use gatehouse_sdk::nn::Dtype;
use gatehouse_sdk::onnx;
use gatehouse_sdk::tflite::{LoadOptions, Model, summarize};

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::Int8 => "int8",
        Dtype::Uint8 => "uint8",
        Dtype::Int32 => "int32",
        Dtype::Float32 => "float32",
    }
}

/// The model's description, or why its bytes are not a model.
pub fn describe(bytes: &[u8]) -> Result<String, String> {
    if !crate::loaded::is_tflite(bytes) {
        return describe_onnx(bytes);
    }
    let s = summarize(bytes).map_err(|e| e.to_string())?;
    let mut out = String::from("{");
    field(&mut out, "operators", &ops(&s.operators));
    field(&mut out, "parameters", &s.parameters.to_string());
    field(&mut out, "weight_bytes", &s.weight_bytes.to_string());
    field(&mut out, "macs", &s.macs.to_string());
    field(&mut out, "tensors", &s.tensors.to_string());
    field(&mut out, "all_supported", &s.all_supported().to_string());
    // The arena is what loading plans: only a model that loads has one.
    match Model::load(bytes, LoadOptions::default()) {
        Ok(m) => {
            field(&mut out, "arena_bytes", &m.arena_bytes().to_string());
            field(&mut out, "input", &tensor(m.input()));
            field(&mut out, "output", &tensor(m.output()));
            field(&mut out, "load_error", "null");
        }
        Err(e) => {
            for k in ["arena_bytes", "input", "output"] {
                field(&mut out, k, "null");
            }
            field(&mut out, "load_error", &string(&e.to_string()));
        }
    }
    out.pop();
    out.push('}');
    Ok(out)
}

/// An ONNX model: its nodes as the file has them, and the host operators
/// they lower to (fused groups become one each), or why it does not load.
fn describe_onnx(bytes: &[u8]) -> Result<String, String> {
    let (_, _, nodes) = onnx::Model::inspect(bytes).map_err(crate::loaded::neither)?;
    let mut out = String::from("{");
    field(&mut out, "format", &string("onnx"));
    let loaded = onnx::Model::load(bytes);
    let semantics = loaded.as_ref().map_or("onnxruntime", |m| m.semantics());
    field(&mut out, "semantics", &string(semantics));
    let names: Vec<String> = nodes.iter().map(|n| string(n)).collect();
    field(&mut out, "nodes", &format!("[{}]", names.join(",")));
    match loaded {
        Ok(m) => {
            let ops: Vec<String> = m.operators().iter().map(|n| string(n)).collect();
            field(&mut out, "host_operators", &format!("[{}]", ops.join(",")));
            field(&mut out, "input", &tensor(m.input()));
            field(&mut out, "output", &tensor(m.output()));
            let outputs: Vec<String> = m.outputs().map(tensor).collect();
            field(&mut out, "outputs", &format!("[{}]", outputs.join(",")));
            field(&mut out, "load_error", "null");
        }
        Err(e) => {
            for k in ["host_operators", "input", "output", "outputs"] {
                field(&mut out, k, "null");
            }
            field(&mut out, "load_error", &string(&e.to_string()));
        }
    }
    out.pop();
    out.push('}');
    Ok(out)
}

fn ops(ops: &[gatehouse_sdk::tflite::OpSummary]) -> String {
    let items: Vec<String> = ops
        .iter()
        .map(|o| {
            let mut s = String::from("{");
            field(&mut s, "index", &o.index.to_string());
            field(&mut s, "op", &string(&o.name));
            field(
                &mut s,
                "unsupported",
                &o.unsupported.as_deref().map_or("null".into(), string),
            );
            field(&mut s, "macs", &o.macs.to_string());
            field(&mut s, "params", &o.params.to_string());
            field(&mut s, "output_shape", &list(&o.output_shape));
            s.pop();
            s.push('}');
            s
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn tensor(t: &TensorInfo) -> String {
    format!(
        "{{\"name\":{},\"shape\":{},\"dtype\":{},\"scale\":{},\"zero_point\":{}}}",
        string(&t.name),
        list(&t.shape),
        string(dtype_name(t.dtype)),
        if t.scale.is_finite() {
            t.scale.to_string()
        } else {
            "null".into()
        },
        t.zero_point
    )
}

fn list<T: ToString>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(T::to_string).collect();
    format!("[{}]", items.join(","))
}

fn field(out: &mut String, key: &str, value: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
    out.push_str(value);
    out.push(',');
}

/// A JSON string: model text (tensor names) is untrusted.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
