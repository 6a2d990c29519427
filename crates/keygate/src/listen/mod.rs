//! The connection layer both listeners use: accepting, TLS, HTTP/1 and
//! HTTP/2, and the bounds on every connection (caps, timeouts, HTTP/2
//! limits). It knows nothing of what is served: a listener hands it one
//! handler per connection.

pub mod limits;

pub use limits::{Limits, LimitsFile};
