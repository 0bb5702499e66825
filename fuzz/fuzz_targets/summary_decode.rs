//! Fuzz target: arbitrary bytes → `Summary::from_bytes` returns `Ok` or `Err`, never panics or aborts; when
//! `Ok`, every function's shard and the library blob are fetched (checksum-verified slices).
//!
//! The prefix checksum guards the header and index, so random bytes rarely get past it. The first input byte
//! picks a mode: odd → the prefix checksum is recomputed over whatever the lengths claim, so the fuzzer
//! reaches the bincode decoders with hostile lengths and contents.

#![no_main]

use libfuzzer_sys::fuzz_target;
use thinjit_fuzz::decode_one;

fuzz_target!(|data: &[u8]| {
    decode_one(data);
});
