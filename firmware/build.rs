//! Builds the libcamera shim when the `libcamera` feature is on; nothing otherwise, so
//! host builds need no libcamera.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_LIBCAMERA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=shim/mecam_libcamera.cpp");
    println!("cargo:rerun-if-changed=shim/mecam_libcamera.h");
    // Link flags are printed after the shim's archive so the linker sees its users first.
    let lib = match pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libcamera")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "the `libcamera` feature needs libcamera's development files \
             (Debian: apt-get install libcamera-dev; Buildroot: BR2_PACKAGE_LIBCAMERA): {e}"
        ),
    };
    // libcamera 0.0.x builds as C++17; releases since 0.4 use C++20 in their headers.
    let std = if lib.version.starts_with("0.0.") || lib.version.starts_with("0.1.") {
        "c++17"
    } else {
        "c++20"
    };
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std(std)
        .file("shim/mecam_libcamera.cpp")
        .include("shim")
        .warnings(true);
    for path in &lib.include_paths {
        build.include(path);
    }
    build.compile("mecam_libcamera");
    for path in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", path.display());
    }
    for name in &lib.libs {
        println!("cargo:rustc-link-lib={name}");
    }
}
