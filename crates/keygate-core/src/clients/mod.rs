//! Services that call with a client certificate (mTLS): the certificate a
//! transport saw (`peer`), and the registry of clients it names.

pub mod peer;

pub use peer::{CertSource, PeerCertificate};
