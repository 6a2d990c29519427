#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keygate_verify::NumericDate;
use serde_json::json;

use super::*;
use crate::keys::apikey::KeyId;

const KEY: &str = "key_AAAAAAAAAAAAAAAA";
const APP: &str = "key_BBBBBBBBBBBBBBBB";

/// The claims a verifier hands back for a token written with `claims`.
fn verified(claims: &TokenClaims) -> Claims {
    Claims {
        iss: "https://issuer".into(),
        sub: Some(claims.subject().to_owned()),
        aud: vec!["api".into()],
        exp: NumericDate::from_secs(100),
        nbf: None,
        iat: None,
        jti: None,
        extra: claims.to_map(),
    }
}

fn raw(sub: &str, extra: Value) -> Claims {
    let mut c = verified(&user());
    c.sub = Some(sub.into());
    c.extra = extra.as_object().unwrap().clone();
    c
}

fn user() -> TokenClaims {
    let mut custom = Map::new();
    custom.insert("plan".into(), json!("pro"));
    TokenClaims {
        principal: Principal::User(UserPrincipal {
            subject: "usr_AAAAAAAAAAAAAAAA".into(),
            session: Some("fam_x".into()),
            client: Some(ClientRef::Key(KeyId::parse(APP).unwrap())),
        }),
        tenant: Some(Tenant::parse("acme").unwrap()),
        roles: vec![
            Role::parse("admin").unwrap(),
            Role::parse("billing").unwrap(),
        ],
        scopes: vec![Scope::parse("orders:read").unwrap()],
        custom,
        cnf: None,
    }
}

fn client() -> TokenClaims {
    TokenClaims {
        principal: Principal::Client(ClientPrincipal {
            id: ClientRef::Key(KeyId::parse(KEY).unwrap()),
            owner: Some("usr_victim".into()),
        }),
        tenant: None,
        roles: Vec::new(),
        scopes: vec![
            Scope::parse("orders:read").unwrap(),
            Scope::parse("orders:write").unwrap(),
        ],
        custom: Map::new(),
        cnf: None,
    }
}

#[test]
fn what_is_written_reads_back_the_same() {
    for (claims, accepted) in [
        (user(), AcceptedKinds::Users),
        (user(), AcceptedKinds::Any),
        (client(), AcceptedKinds::Clients),
        (client(), AcceptedKinds::Any),
    ] {
        let read = TokenClaims::read(&verified(&claims), accepted).unwrap();
        assert_eq!(read, claims, "{accepted:?}");
    }
}

#[test]
fn the_wire_form_is_the_one_keygate_has_always_written() {
    assert_eq!(
        Value::Object(user().to_map()),
        json!({
            "kg_kind": "user", "sid": "fam_x", "client_id": APP, "tenant": "acme",
            "roles": ["admin", "billing"], "scope": "orders:read", "plan": "pro",
        })
    );
    assert_eq!(
        Value::Object(client().to_map()),
        json!({
            "kg_kind": "client", "client_id": KEY, "kg_owner": "usr_victim",
            "scope": "orders:read orders:write",
        })
    );
    // A user token always says its roles; nothing else is written empty.
    let mut bare = user();
    bare.roles.clear();
    bare.scopes.clear();
    bare.tenant = None;
    let map = bare.to_map();
    assert_eq!(map.get(ROLES_CLAIM), Some(&json!([])));
    assert!(!map.contains_key(SCOPE_CLAIM) && !map.contains_key(TENANT_CLAIM));
    // A user token for no session (the gateway's internal one) leaves an
    // empty list of roles out, as it always has.
    if let Principal::User(u) = &mut bare.principal {
        u.session = None;
    }
    assert!(!bare.to_map().contains_key(ROLES_CLAIM));
    let request = client().request("api".into(), 60);
    assert_eq!(
        (request.kind, request.subject.as_str()),
        (TokenKind::Client, KEY)
    );
}

#[test]
fn a_client_token_is_never_read_as_a_users_nor_a_user_token_as_a_clients() {
    let refused = TokenClaims::read(&verified(&client()), AcceptedKinds::Users);
    assert_eq!(refused, Err(ClaimError::WrongTokenKind));
    let refused = TokenClaims::read(&verified(&user()), AcceptedKinds::Clients);
    assert_eq!(refused, Err(ClaimError::WrongTokenKind));
}

#[test]
fn a_token_without_a_kind_is_refused_whatever_is_accepted() {
    let old = raw(KEY, json!({"client_id": KEY, "roles": ["admin"]}));
    for accepted in [
        AcceptedKinds::Users,
        AcceptedKinds::Clients,
        AcceptedKinds::Any,
    ] {
        let refused = TokenClaims::read(&old, accepted);
        assert!(
            matches!(refused, Err(ClaimError::MissingClaim { name: "kg_kind" })),
            "{refused:?}"
        );
    }
}

#[test]
fn reading_the_identity_alone_is_reading_all_but_the_custom_claims() {
    let mut claims = user();
    claims.custom.insert("plan".into(), json!("pro"));
    for accepted in [AcceptedKinds::Users, AcceptedKinds::Any] {
        let token = verified(&claims);
        let identity = TokenClaims::read_identity(&token, accepted).unwrap();
        let mut full = TokenClaims::read(&token, accepted).unwrap();
        assert_eq!(full.custom.get("plan"), Some(&json!("pro")));
        full.custom.clear();
        assert_eq!(identity, full, "{accepted:?}");
    }
    // It refuses what `read` refuses: the kind, then a value keygate would
    // never write.
    let refused = TokenClaims::read_identity(&verified(&client()), AcceptedKinds::Users);
    assert_eq!(refused, Err(ClaimError::WrongTokenKind));
    let bad = raw("usr_x", json!({"kg_kind": "user", "roles": ["ok", 7]}));
    let refused = TokenClaims::read_identity(&bad, AcceptedKinds::Users);
    assert_eq!(refused, Err(ClaimError::InvalidClaim { name: ROLES_CLAIM }));
}

#[test]
fn unknown_claims_are_kept_and_keygates_own_names_never_are() {
    // Names keygate does not know pass through, as verification lets them.
    let token = raw(
        KEY,
        json!({"kg_kind": "client", "client_id": KEY, "sid": "fam_x", "x-custom": {"a": 1}}),
    );
    let read = TokenClaims::read(&token, AcceptedKinds::Any).unwrap();
    assert_eq!(read.custom.get("x-custom"), Some(&json!({"a": 1})));
    // `sid` means nothing on a client token: dropped, not kept as custom.
    assert!(!read.custom.contains_key(SESSION_CLAIM));
    // Custom claims never shadow keygate's own when written.
    let mut claims = client();
    claims.custom.insert(TENANT_CLAIM.into(), json!("globex"));
    claims.custom.insert(KIND_CLAIM.into(), json!("user"));
    let map = claims.to_map();
    assert!(!map.contains_key(TENANT_CLAIM));
    assert_eq!(map.get(KIND_CLAIM), Some(&json!("client")));
}

#[test]
fn lists_read_from_either_spelling() {
    let token = raw(
        "usr_AAAAAAAAAAAAAAAA",
        json!({"kg_kind": "user", "roles": "admin billing", "scope": ["a:b", "c"]}),
    );
    let read = TokenClaims::read(&token, AcceptedKinds::Users).unwrap();
    let roles: Vec<&str> = read.roles.iter().map(Role::as_str).collect();
    assert_eq!(roles, ["admin", "billing"]);
    assert_eq!(scope_text(&read.scopes), "a:b c");
}

#[test]
fn a_known_claim_keygate_would_never_write_is_refused() {
    let cases = [
        (json!({"kg_kind": "client"}), "client_id", true),
        (
            json!({"kg_kind": "client", "client_id": "owner"}),
            "client_id",
            false,
        ),
        (json!({"kg_kind": "user", "tenant": 5}), "tenant", false),
        (json!({"kg_kind": "user", "tenant": "a b"}), "tenant", false),
        (json!({"kg_kind": "user", "roles": [1]}), "roles", false),
        (
            json!({"kg_kind": "user", "roles": {"a": 1}}),
            "roles",
            false,
        ),
        (
            json!({"kg_kind": "user", "scope": "ok no|pe"}),
            "scope",
            false,
        ),
        (json!({"kg_kind": "user", "sid": ["x"]}), "sid", false),
    ];
    for (extra, claim, missing) in cases {
        let refused = TokenClaims::read(&raw("usr_x", extra.clone()), AcceptedKinds::Any);
        let expected = if missing {
            ClaimError::MissingClaim { name: claim }
        } else {
            ClaimError::InvalidClaim { name: claim }
        };
        assert_eq!(refused, Err(expected), "{extra}");
    }
    let mut no_sub = verified(&user());
    no_sub.sub = None;
    assert_eq!(
        TokenClaims::read(&no_sub, AcceptedKinds::Users),
        Err(ClaimError::MissingClaim { name: "sub" })
    );
}

#[test]
fn null_counts_as_absent() {
    let token = raw(
        "usr_x",
        json!({"kg_kind": "user", "tenant": null, "roles": null}),
    );
    let read = TokenClaims::read(&token, AcceptedKinds::Users).unwrap();
    assert_eq!((read.tenant, read.roles.len()), (None, 0));
}

#[test]
fn an_mtls_client_and_its_binding_read_back_and_never_as_a_user() {
    let mut c = client();
    let cli = crate::clients::model::ClientId::parse("cli_CCCCCCCCCCCCCCCC").unwrap();
    c.principal = Principal::Client(ClientPrincipal {
        id: ClientRef::Mtls(cli),
        owner: Some("team-a".into()),
    });
    c.cnf = Some([9; 32]);
    let map = c.to_map();
    assert_eq!(map["client_id"], "cli_CCCCCCCCCCCCCCCC");
    assert_eq!(
        map["cnf"],
        json!({"x5t#S256": keygate_verify::base64url_encode(&[9; 32])})
    );
    let read = TokenClaims::read(&verified(&c), AcceptedKinds::Clients).unwrap();
    assert_eq!(read, c);
    assert!(read.custom.is_empty(), "cnf is keygate's own, not custom");
    assert_eq!(
        TokenClaims::read(&verified(&c), AcceptedKinds::Users),
        Err(keygate_verify::Error::WrongTokenKind)
    );
    // A client_id that is neither a key nor a client is refused.
    let mut bad = verified(&c);
    bad.extra
        .insert("client_id".into(), json!("usr_AAAAAAAAAAAAAAAA"));
    assert!(TokenClaims::read(&bad, AcceptedKinds::Clients).is_err());
}
