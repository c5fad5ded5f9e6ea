//! Compiles every `.proto` under `proto/omni/` into Rust: prost messages, tonic clients and
//! servers, proto3-JSON serde impls (pbjson) and one file descriptor set for gRPC reflection.
//!
//! protoc comes from `protoc-bin-vendored`, so building needs no system protoc.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// Where `lib.rs` finds the encoded descriptor set (`include_bytes!`).
const DESCRIPTOR_FILE: &str = "omni_descriptor.bin";

const AVAILABILITY_RESPONSE: &str = ".omni.inventory.v1.GetAvailabilityResponse";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join(DESCRIPTOR_FILE);

    let mut protos = Vec::new();
    collect_protos(&manifest_dir.join("omni"), &mut protos)?;
    // Sorted so the generated code and descriptor set do not depend on directory order.
    protos.sort();
    // A new file in a package directory must trigger a rebuild too, not just edits.
    println!("cargo:rerun-if-changed=omni");

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let includes = [manifest_dir.clone(), protoc_bin_vendored::include_path()?];

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(&descriptor_path)
        // Well-known types come from pbjson-types instead of prost-types: the same structs, but
        // with serde impls that follow the proto3 JSON mapping (RFC 3339 timestamps, "3.5s"
        // durations), which the generated serde code of our own messages relies on.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        // Written by hand (src/availability.rs) so a server can build its thousands of rows
        // without a string per row; the same message on the wire.
        .extern_path(
            AVAILABILITY_RESPONSE,
            "crate::availability::GetAvailabilityResponse",
        )
        .compile_with_config(config, &protos, &includes)?;

    let descriptors = fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        // Consumers of events must survive a producer that added a field (CloudEvents data
        // evolves additively within v1).
        .ignore_unknown_fields()
        .exclude([AVAILABILITY_RESPONSE])
        .build(&[".omni"])?;

    Ok(())
}

fn collect_protos(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    Ok(())
}
