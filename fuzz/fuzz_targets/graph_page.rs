//! Fuzz target `graph_page`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("graph_page", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("graph_page: {broken}: {result:?}");
    }
});
