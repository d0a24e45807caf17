//! Fuzz target `arm_answer`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("arm_answer", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("arm_answer: {broken}: {result:?}");
    }
});
