//! Fuzz target `resync`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("resync", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("resync: {broken}: {result:?}");
    }
});
