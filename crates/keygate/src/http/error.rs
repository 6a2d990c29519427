//! The admin API's errors are keygate-http's problem+json: one type and one
//! map for every listener. Re-exported here for the handlers' paths.

pub use keygate_http::problem::{ApiError, ErrorCause, PROBLEM_JSON};
