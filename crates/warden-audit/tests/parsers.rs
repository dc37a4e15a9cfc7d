//! Everything that parses untrusted text or bytes answers with an error, never a panic, and
//! never accepts an altered signed note.

mod common;

use common::*;
use proptest::prelude::*;
use warden_audit::note::parse;
use warden_audit::{Checkpoint, ConsistencyProof, InclusionProof, Record, Signer, Verifier};

fn valid_note() -> String {
    Checkpoint::new(ORIGIN, 12_345, [7; 32])
        .sign(&signer())
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*|[a-z0-9+/=\n\u{2014} .]*") {
        let _ = parse(&text);
        let _ = verifier().open(&text);
        let _ = Checkpoint::parse(&text);
        let _ = Verifier::parse(&text);
        let _ = Signer::from_key_string(&text);
        let _ = InclusionProof::parse(&text);
        let _ = ConsistencyProof::parse(&text);
        let _ = Record::from_bytes(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_are_not_records(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Record::from_bytes(&bytes);
    }

    #[test]
    fn an_altered_note_never_opens(at in any::<prop::sample::Index>(), with in any::<char>()) {
        let note = valid_note();
        let mut chars: Vec<char> = note.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != with);
        chars[i] = with;
        let altered: String = chars.into_iter().collect();
        prop_assert!(verifier().open(&altered).is_err(), "{altered:?}");
    }

    #[test]
    fn a_truncated_note_never_opens(cut in 0usize..200) {
        let note = valid_note();
        let cut = cut.min(note.len() - 1);
        prop_assume!(note.is_char_boundary(cut));
        prop_assert!(verifier().open(&note[..cut]).is_err());
    }
}

#[test]
fn the_valid_note_opens() {
    let note = valid_note();
    let text = verifier().open(&note).unwrap();
    assert_eq!(Checkpoint::parse(text).unwrap().size, 12_345);
}
