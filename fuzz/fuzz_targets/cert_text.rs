//! Fuzz target `cert_text`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("cert_text", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("cert_text: {broken}: {result:?}");
    }
});
