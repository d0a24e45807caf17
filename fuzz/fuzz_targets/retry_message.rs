//! Fuzz target `retry_message`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("retry_message", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("retry_message: {broken}: {result:?}");
    }
});
