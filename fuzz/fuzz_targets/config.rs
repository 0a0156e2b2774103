//! The configuration loader on arbitrary text, with environment overrides:
//! the input is the TOML text, then optionally NUL and `KEY=VALUE` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (toml, env) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(String, String)> =
        env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match chorus_sync::config::load_from(toml, None, &env) {
        // What check-config prints must load back.
        Ok(config) => {
            let shown = chorus_sync::config::render(&config);
            if let Err(e) = chorus_sync::config::load_from(&shown, None, &[]) {
                // A masked store password is the one thing that may differ.
                assert!(shown.contains("[REDACTED]"), "render does not load back: {e}\n{shown}");
            }
        }
        Err(e) => assert!(!e.problems.is_empty(), "an error lists its problems"),
    }
});
