//! JWE (RFC 7516, 7518 §4-5), compact serialization only: nested JWTs for
//! claims that neither the bearer nor an intermediary may read.
//!
//! - `algs`: the algorithms implemented, those refused by design
//!   (`RSA1_5`, `PBES2-*`, the 192-bit key wraps), and [`JwePolicy`].
//! - `header`: the protected header and its key-free rules (`zip`, `crit`,
//!   `p2c` refused; `alg`/`enc` checked against the policy).
//! - `key`: [`DecryptionKey`] (private JWK, PKCS#8, PEM); `recipient`:
//!   [`RecipientKey`] (public JWK); each bound to its algorithms.
//! - `keymgmt`: CEK recovery and wrapping (AES-KW, AES-GCMKW, ECDH-ES with
//!   the Concat KDF on P-256/384/521 and X25519, RSA-OAEP), with RFC 7516 §11.5's random CEK on failure.
//! - `content`: AES-GCM and AES-CBC-HMAC-SHA-2.
//! - `decrypt`: [`Decrypter`]; `encrypt`: [`Encrypter`].
//!
//! Not behind a feature: it adds no dependency (aws-lc-rs, base64 and
//! serde_json are already there), only code.

mod algs;
mod content;
mod decrypt;
mod encrypt;
mod header;
mod key;
mod keymgmt;
mod recipient;

pub use algs::{ContentEncryption, JwePolicy, KeyManagement};
pub use decrypt::{DEFAULT_MAX_JWE_LEN, Decrypted, Decrypter, is_compact_jwe};
pub use encrypt::Encrypter;
pub use header::JweHeader;
pub use key::DecryptionKey;
pub use recipient::RecipientKey;
