//! Stripe-looking identifiers (`cus_…`, `evt_…`): a prefix and random base62 characters.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix` followed by `len` random base62 characters. 62^24 makes collisions moot.
pub(crate) fn new_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    for _ in 0..len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

/// The default length Stripe uses for most object ids.
pub(crate) fn object_id(prefix: &str) -> String {
    new_id(prefix, 24)
}
