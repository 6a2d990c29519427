//! Property: a valid token with any byte changed, inserted or removed never
//! verifies, and no input makes the verifier panic.

use crate::common;

use common::*;
use keygate_verify::Algorithm;
use proptest::prelude::*;
use std::sync::OnceLock;

struct Fixture {
    tokens: Vec<String>,
    verifier: keygate_verify::Verifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = [es256("es"), ed25519("ed"), rsa_key(Algorithm::PS256, "ps")];
        let refs: Vec<&TestKey> = keys.iter().collect();
        let verifier = verifier(&refs);
        let hmac = hs(Algorithm::HS256, "h", &[5; 32]);
        let mut tokens: Vec<String> = keys.iter().map(TestKey::token).collect();
        tokens.push(hmac.token());
        // The HMAC token is checked by its own verifier below; keep one list.
        Fixture { tokens, verifier }
    })
}

fn hmac_verifier() -> &'static keygate_verify::Verifier {
    static V: OnceLock<keygate_verify::Verifier> = OnceLock::new();
    V.get_or_init(|| verifier(&[&hs(Algorithm::HS256, "h", &[5; 32])]))
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(token: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = token.as_bytes().to_vec();
    for m in mutations {
        match *m {
            Mutation::Replace(i, b) => {
                let i = i % bytes.len().max(1);
                if let Some(slot) = bytes.get_mut(i) {
                    *slot = b;
                }
            }
            Mutation::Insert(i, b) => {
                let i = i % (bytes.len() + 1);
                bytes.insert(i, b);
            }
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes.remove(i);
                }
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_tokens_never_verify(which in 0usize..4, mutations in prop::collection::vec(mutation(), 1..4)) {
        let fixture = fixture();
        let original = &fixture.tokens[which];
        let verifier = if which == 3 { hmac_verifier() } else { &fixture.verifier };
        prop_assert!(verifier.verify(original, NOW).is_ok());
        let mutated = apply(original, &mutations);
        let text = String::from_utf8_lossy(&mutated);
        if text != original.as_str() {
            prop_assert!(verifier.verify(&text, NOW).is_err(), "{}", text);
            prop_assert!(verifier.verify_signature(&text).is_err(), "{}", text);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(input in ".{0,300}", dots in "[A-Za-z0-9_.=+/ -]{0,300}") {
        let verifier = &fixture().verifier;
        let _ = verifier.verify(&input, NOW);
        let _ = verifier.verify(&dots, NOW);
        let _ = verifier.verify_signature(&dots);
        let _ = keygate_verify::JwkSet::from_json(input.as_bytes(), &Default::default());
        let _ = keygate_verify::Jwk::from_json(dots.as_bytes());
    }
}
