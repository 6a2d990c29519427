//! The gateway's configuration (`keygate::gateway::config::parse_text`).
//!
//! The fuzzed text follows a secret in the same file, as the pepper may be:
//! no error may quote it (reload errors go to the log), and parsing is a
//! function of the text (the same text, the same answer).

#![no_main]

use keygate::gateway::config::parse_text;

const SECRET: &str = "pepperSECRETvalue0123456789";

fn check(data: &[u8]) {
    // A fuzzed value equal to the secret may be quoted as what it is: a value
    // of the gateway section, not the secret.
    let Some(text) = keygate_fuzz::text(data).filter(|t| !t.contains(SECRET)) else {
        return;
    };
    let file = format!("pepper = \"{SECRET}\"\n{text}");
    let first = parse_text(&file);
    if let Err(errors) = &first {
        for e in errors {
            assert!(
                !e.contains(SECRET),
                "a configuration error quotes a secret: {e}"
            );
        }
    }
    let second = parse_text(&file);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.is_some(), b.is_some());
            let routes = |c: &Option<keygate::gateway::config::GatewayConfig>| {
                c.as_ref().map(|c| c.routes.len())
            };
            assert_eq!(routes(a), routes(b));
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("the same text parsed two ways"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
