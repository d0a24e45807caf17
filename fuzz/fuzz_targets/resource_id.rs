//! Fuzz target `resource_id`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("resource_id", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("resource_id: {broken}: {result:?}");
    }
});
