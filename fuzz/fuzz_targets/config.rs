//! Fuzz target `config`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("config", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("config: {broken}: {result:?}");
    }
});
