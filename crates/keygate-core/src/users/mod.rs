//! Users: records behind the `Admin` capability, argon2id passwords, login
//! throttling and the per-user session cut-off that token checks read.
//!
//! - `model`: `UserRecord`, `UserId`, `Username`, `Role`, claims rules.
//! - `password`: the password policy, argon2id hashing off the async workers.
//! - `throttle`: per-username and per-client login throttling.
//! - `cutoff`: the short-lived cache of cut-offs for token verification.
//! - `service`: create, read, list, update, revoke sessions; `login`:
//!   `authenticate` and `session_cutoff`.

pub mod cutoff;
mod login;
pub mod model;
pub mod password;
mod service;
pub mod throttle;

pub use login::LoginError;
pub use model::{Claims, Role, UserFilter, UserId, UserRecord, Username};
pub use password::{Password, PhcHash};
pub use service::{NewUser, UserPatch, UserService};
