//! The JSON an inference prints.

use gatehouse_runtime::{Inference, PluginId};
use serde_json::{Map, Value, json};

/// `{"plugin":..,"version":..,"input":..,"label":..,"scores":{..},"score":..,"events":[..]}`,
/// leaving out fields that do not apply.
pub fn inference_json(id: &PluginId, input: Option<&str>, inf: &Inference) -> Value {
    let mut o = Map::new();
    o.insert("plugin".into(), json!(id.name));
    o.insert("version".into(), json!(id.version));
    if let Some(i) = input {
        o.insert("input".into(), json!(i));
    }
    if let Some(l) = &inf.label {
        o.insert("label".into(), json!(l));
    }
    if !inf.scores.is_empty() {
        let scores: Map<String, Value> = inf
            .scores
            .iter()
            .map(|(l, s)| (l.clone(), json!(round6(*s as f64))))
            .collect();
        o.insert("scores".into(), Value::Object(scores));
    }
    if let Some(s) = inf.score {
        o.insert("score".into(), json!(s));
    }
    if !inf.events.is_empty() {
        let ev: Vec<Value> = inf
            .events
            .iter()
            .map(|e| json!({"t_s": e.t_s, "label": e.label, "score": round6(e.score as f64)}))
            .collect();
        o.insert("events".into(), Value::Array(ev));
    }
    if let Some(out) = &inf.output {
        o.insert("output_bytes".into(), json!(out.len()));
    }
    Value::Object(o)
}

/// Scores are int8 probabilities; six decimals show them exactly enough.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
