//! The Rust code `scripts/gen-protos.sh` generates from `proto/` (a subset
//! of Envoy's published API), committed so a build needs no `protoc`.
//! The modules mirror the proto packages, as the generated code expects.

#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

pub mod envoy {
    pub mod service {
        pub mod auth {
            pub mod v3 {
                include!("generated/envoy.service.auth.v3.rs");
            }
        }
    }
    pub mod config {
        pub mod core {
            pub mod v3 {
                include!("generated/envoy.config.core.v3.rs");
            }
        }
    }
    pub mod r#type {
        pub mod v3 {
            include!("generated/envoy.r#type.v3.rs");
        }
    }
}

pub mod google {
    pub mod rpc {
        include!("generated/google.rpc.rs");
    }
}
