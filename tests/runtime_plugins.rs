//! Loading, caching and describing plugins through the runtime.

use gatehouse_runtime::{Error, Failure, InitConfig, InputKind, Limits, Source};
use gatehouse_scenarios::{plugin, root, runtime, temp_dir};

#[test]
fn the_second_load_comes_from_the_cache() {
    let cache = temp_dir("cache");
    let rt = runtime(&cache);
    let first = rt
        .load_file(&plugin("kws"), Limits::default())
        .expect("load");
    assert_eq!(first.load_info().source, Source::Compiled);
    let second = rt
        .load_file(&plugin("kws"), Limits::default())
        .expect("load again");
    assert_eq!(second.load_info().source, Source::Cached);
    // A fresh runtime (a restarted gateway) also hits the cache.
    let again = runtime(&cache)
        .load_file(&plugin("kws"), Limits::default())
        .expect("load in a new runtime");
    assert_eq!(again.load_info().source, Source::Cached);
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let cache = temp_dir("cache-corrupt");
    let rt = runtime(&cache);
    rt.load_file(&plugin("tflite"), Limits::default())
        .expect("load");
    for e in std::fs::read_dir(&cache).expect("cache dir") {
        std::fs::write(e.expect("entry").path(), b"garbage").expect("corrupt");
    }
    let p = rt
        .load_file(&plugin("tflite"), Limits::default())
        .expect("load over a corrupt entry");
    assert_eq!(p.load_info().source, Source::Compiled);
}

#[test]
fn describe_reports_identity_inputs_and_labels() {
    let rt = runtime(&temp_dir("describe"));
    let p = rt
        .load_file(&plugin("kws"), Limits::default())
        .expect("load");
    let d = p.descriptor();
    assert_eq!(
        (d.id.name.as_str(), d.id.version.as_str()),
        ("kws", "0.1.0")
    );
    assert_eq!(d.input_kinds, vec![InputKind::Wav]);
    assert_eq!(d.labels.len(), 12);
    assert_eq!(d.labels[9], "yes");
}

#[test]
fn garbage_is_not_a_plugin() {
    let rt = runtime(&temp_dir("garbage"));
    let err = rt
        .load(b"\0asm not really", "junk.wasm", Limits::default())
        .err()
        .expect("garbage loads");
    assert!(matches!(err, Error::Load { .. }), "{err}");
    assert!(err.to_string().starts_with("junk.wasm:"), "{err}");
}

#[test]
fn plugin_errors_are_errors_not_traps() {
    let rt = runtime(&temp_dir("plugin-errors"));
    let p = rt
        .load_file(&plugin("kws"), Limits::default())
        .expect("load");
    let mut kws = p.instantiate(InitConfig::default()).expect("init");
    let err = kws
        .process(b"definitely not a wav")
        .expect_err("junk input");
    assert!(
        matches!(err.failure(), Some(Failure::InvalidInput(_))),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "plugin kws@0.1.0: rejected the input: not a RIFF/WAVE file"
    );
    assert_eq!(kws.replacements(), 0);
    // A wrong sample rate is refused with the rate.
    let mut wav = std::fs::read(root().join("examples/data/kws/synth_yes_en-us.wav")).expect("wav");
    wav[24..28].copy_from_slice(&8000u32.to_le_bytes());
    let err = kws.process(&wav).expect_err("8 kHz");
    assert!(err.to_string().contains("8000 Hz"), "{err}");
}

#[test]
fn the_tflite_plugin_refuses_a_missing_or_malformed_model() {
    let rt = runtime(&temp_dir("tflite-bad"));
    let p = rt
        .load_file(&plugin("tflite"), Limits::default())
        .expect("load");
    let err = p
        .instantiate(InitConfig::default())
        .err()
        .expect("no model");
    assert!(
        matches!(err.failure(), Some(Failure::InvalidConfig(m)) if m.contains("no model")),
        "{err}"
    );
    let model =
        std::fs::read(root().join("models/mlperf-tiny/kws_ref_model.tflite")).expect("model");
    for cut in [0, 7, 100, model.len() / 2] {
        let err = p
            .instantiate(InitConfig {
                model: Some(model[..cut].to_vec()),
                settings: vec![],
            })
            .err()
            .unwrap_or_else(|| panic!("truncated at {cut} of {} loads", model.len()));
        assert!(
            matches!(err.failure(), Some(Failure::InvalidConfig(_))),
            "cut at {cut}: {err}"
        );
    }
    // Cut anywhere or flip bytes anywhere: every outcome is an error or a
    // working model (the damage may hit bytes the loader never reads),
    // never a trap.
    let damaged = (0..model.len()).step_by(997).flat_map(|i| {
        let mut flipped = model.clone();
        flipped[i] ^= 0x5a;
        [flipped, model[..model.len() - i].to_vec()]
    });
    for (i, bad) in damaged.enumerate() {
        match p.instantiate(InitConfig {
            model: Some(bad),
            settings: vec![],
        }) {
            Ok(_) => {}
            Err(e) => assert!(
                !e.failure().is_some_and(|f| f.is_trap()),
                "damage #{i}: {e}"
            ),
        }
    }
}
