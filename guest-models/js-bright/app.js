// `js-bright`: a Gatehouse plugin in JavaScript, built by componentize-js
// against the plugin world. It scores how bright its input bytes are (their
// mean, 0-255). console.log goes to the operator's log; errors thrown as
// { tag, val } are the plugin-error variant the operator sees by kind.

export function describe() {
  return {
    name: "js-bright",
    version: "0.1.0",
    summary: "Mean of the input bytes (JavaScript example)",
    inputKinds: ["raw-tensor"],
    labels: ["dark", "bright"],
  };
}

let threshold = 128;

export function init(config) {
  for (const { key, value } of config.settings) {
    if (key === "threshold") {
      threshold = Number(value);
      if (!Number.isFinite(threshold)) {
        throw { tag: "invalid-config", val: `threshold=${JSON.stringify(value)} is not a number` };
      }
    }
  }
  console.log(`js-bright ready, threshold ${threshold}`);
}

export function process(input) {
  if (input.length === 0) {
    throw { tag: "invalid-input", val: "empty input" };
  }
  let sum = 0;
  for (const b of input) sum += b;
  const mean = sum / input.length;
  return {
    label: mean >= threshold ? "bright" : "dark",
    scores: [],
    score: mean,
    events: [],
    output: undefined,
  };
}

export function stats() {
  return [];
}
