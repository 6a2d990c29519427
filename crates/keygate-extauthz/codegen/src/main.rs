//! Writes the Rust code for keygate's subset of Envoy's ext_authz protos
//! into the directory given as the first argument (needs `protoc`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: keygate-extauthz-codegen OUT_DIR")?
        .into();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
    tonic_prost_build::configure()
        .build_server(true)
        // The client is for the tests and for Rust callers; it needs no
        // transport of tonic's (any tower service will do).
        .build_client(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_protos(
            &[root.join("envoy/service/auth/v3/external_auth.proto")],
            &[root],
        )?;
    Ok(())
}
