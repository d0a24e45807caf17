//! Fuzz target `cert_der`: see `seedwatch::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = seedwatch::fuzzing::run("cert_der", data);
    if let Err(broken) = seedwatch::fuzzing::check(&result) {
        panic!("cert_der: {broken}: {result:?}");
    }
});
