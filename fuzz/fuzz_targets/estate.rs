//! Fuzz target `estate`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("estate", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("estate: {broken}: {result:?}");
    }
});
