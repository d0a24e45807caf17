//! Fuzz target `table_entity`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("table_entity", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("table_entity: {broken}: {result:?}");
    }
});
