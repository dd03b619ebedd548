//! The hasher of the table's maps: multiplicative, far cheaper than
//! SipHash, eight bytes a step for names.
//!
//! Function ids are handed out by the server and agent ids are random, so
//! those keys are not chosen by anyone. Names and paths are chosen by
//! agents, which are authenticated clients of one hub; the table seeds
//! nothing per run, so an agent set on slowing it could pick colliding
//! names. What bounds that is what bounds an agent anyway: the request
//! limits at the edge (locks per call, name lengths, `resource::MAX_DEPTH`)
//! and an operator's `end-agent`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub(in crate::locks) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Byte by byte: copying a short remainder into a buffer calls
            // memcpy, which cost more than hashing a whole key.
            let last = rest
                .iter()
                .rev()
                .fold(0u64, |word, &b| (word << 8) | u64::from(b));
            // The length keeps "a" and "a\0" apart.
            self.write_u64(last ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, x: u8) {
        self.write_u64(x as u64);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(in crate::locks) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
