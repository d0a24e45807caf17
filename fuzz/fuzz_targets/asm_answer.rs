//! Fuzz target `asm_answer`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("asm_answer", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("asm_answer: {broken}: {result:?}");
    }
});
