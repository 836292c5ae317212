//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! drivers and oracles (`fuzz/oracles.rs`), so every input the fuzzers kept, and every crash
//! they found, is checked again by a plain `cargo test` without cargo-fuzz or nightly flags.

use crate::oracles;

use std::path::Path;

use account_link_bridge::state::OpenError;

/// Feeds every file of `fuzz/corpus/<target>` to `run`; returns how many there were.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&input));
        assert!(outcome.is_ok(), "{} fails its oracle", path.display());
        count += 1;
    }
    assert!(count > 0, "the {target} corpus is empty");
    count
}

#[test]
fn the_token_request_corpus_parses_and_round_trips() {
    replay("token_request", oracles::token_request);
}

#[test]
fn the_rewrite_answer_corpus_rewrites_to_well_formed_answers() {
    replay("rewrite_answer", oracles::rewrite_answer);
}

#[test]
fn the_unpack_corpus_unpacks_exactly_inversely() {
    replay("unpack", oracles::unpack);
}

#[test]
fn the_state_open_corpus_never_opens() {
    replay("state_open", oracles::state_open);
}

#[test]
fn the_state_seeds_are_genuine_so_the_fuzzer_starts_past_authentication() {
    let sealer = oracles::fuzz_sealer();
    for sealed in oracles::GENUINE_EXPIRED {
        assert_eq!(
            sealer.open::<oracles::Probe>(sealed).unwrap_err(),
            OpenError::Expired
        );
    }
}
