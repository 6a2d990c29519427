//! The Rust code `scripts/gen-protos.sh` generates from `proto/` (a subset
//! of Envoy's published API), committed so a build needs no `protoc`.
//! The modules mirror the proto packages, as the generated code expects.

#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

pub mod envoy {
    pub mod service {
        pub mod auth {
            pub mod v3 {
                include!("../generated/envoy.service.auth.v3.rs");
            }
        }
    }
    pub mod config {
        pub mod core {
            pub mod v3 {
                include!("../generated/envoy.config.core.v3.rs");
            }
        }
    }
    pub mod r#type {
        pub mod v3 {
            include!("../generated/envoy.r#type.v3.rs");
        }
    }
}

pub mod google {
    pub mod rpc {
        include!("../generated/google.rpc.rs");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::Path;
    use std::process::Command;

    /// The committed code is what `proto/` generates, when `protoc` is
    /// here to tell (Debian's protobuf-compiler); the generator builds
    /// once, in its own target directory.
    #[test]
    fn the_generated_code_is_current() {
        let found = Command::new("protoc").arg("--version").output().is_ok();
        if !found {
            eprintln!("protoc is not installed: the generated code is not checked");
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gen-protos.sh");
        let out = Command::new("sh")
            .arg(script)
            .arg("--check")
            .output()
            .expect("run scripts/gen-protos.sh");
        assert!(
            out.status.success(),
            "generated is stale; run scripts/gen-protos.sh\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
