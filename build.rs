//! Builds the web portal (`portal/`, a Leptos app) for the browser and embeds it: a nested cargo
//! build for wasm32 in its own target directory (profile `wasm-release`: size first),
//! wasm-bindgen as a library (pinned with the portal's `wasm-bindgen`), then each file named by
//! its content hash and compressed with brotli and gzip. No `wasm-opt`: Debian's Binaryen 108
//! breaks wasm-bindgen's input (its function table) before bindgen and its output after. `src/http/portal.rs` includes
//! the generated table. `CONFIDANT_PORTAL_WASM=<file>` with `CONFIDANT_PORTAL_MLS_WASM=<file>` use prebuilt
//! wasm instead (for a machine without the wasm32 target). The portal's MLS device
//! (`portal/mls`) is built in the same invocation into its own module, which the page fetches
//! only after sign-in (boot.js). It also tells cargo that `sqlx::migrate!` reads
//! `migrations/`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

use sha2::{Digest, Sha256};

const PORTAL_CRATE: &str = "confidant-portal";
const WASM_NAME: &str = "confidant_portal.wasm";
/// The portal's MLS device, a second module the portal loads only after sign-in.
const MLS_CRATE: &str = "confidant-portal-mls";
const MLS_WASM_NAME: &str = "confidant_portal_mls.wasm";

type Failed = Box<dyn std::error::Error>;

fn main() -> Result<(), Failed> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // `sqlx::migrate!` embeds the migrations, but cargo does not know it reads them.
    for watched in [
        "migrations",
        "portal/src",
        "portal/static",
        "portal/Cargo.toml",
        "portal/mls/src",
        "portal/mls/Cargo.toml",
        "client/src",
        "client/Cargo.toml",
        "protocol/src",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CONFIDANT_PORTAL_WASM");
    println!("cargo:rerun-if-env-changed=CONFIDANT_PORTAL_MLS_WASM");

    let (wasm, mls_wasm) = match (env::var_os("CONFIDANT_PORTAL_WASM"), env::var_os("CONFIDANT_PORTAL_MLS_WASM")) {
        (Some(prebuilt), Some(mls)) => (PathBuf::from(prebuilt), PathBuf::from(mls)),
        _ => build_wasm(&root)?,
    };
    let bindgen_dir = out.join("bindgen");
    fs::create_dir_all(&bindgen_dir)?;
    for (input, name) in [(&wasm, "portal"), (&mls_wasm, "mls")] {
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(input)
            .web(true)?
            .typescript(false)
            .out_name(name)
            .generate(&bindgen_dir)?;
    }

    let static_dir = root.join("portal/static");
    let mut assets = Assets::default();
    let wasm_url =
        assets.add("portal_bg", "wasm", "application/wasm", fs::read(bindgen_dir.join("portal_bg.wasm"))?)?;
    let glue_url =
        assets.add("portal", "js", "text/javascript; charset=utf-8", fs::read(bindgen_dir.join("portal.js"))?)?;
    let mls_wasm_url = assets.add("mls_bg", "wasm", "application/wasm", fs::read(bindgen_dir.join("mls_bg.wasm"))?)?;
    let mls_glue_url =
        assets.add("mls", "js", "text/javascript; charset=utf-8", fs::read(bindgen_dir.join("mls.js"))?)?;
    let boot = fs::read_to_string(static_dir.join("boot.js"))?
        .replace("@GLUE@", &glue_url)
        .replace("@WASM@", &wasm_url)
        .replace("@MLS_GLUE@", &mls_glue_url)
        .replace("@MLS_WASM@", &mls_wasm_url);
    let boot_url = assets.add("boot", "js", "text/javascript; charset=utf-8", boot.into_bytes())?;
    let css_url = assets.add("style", "css", "text/css; charset=utf-8", fs::read(static_dir.join("style.css"))?)?;
    let icon_url = assets.add("icon", "svg", "image/svg+xml", fs::read(static_dir.join("icon.svg"))?)?;
    let index = fs::read_to_string(static_dir.join("index.html"))?
        .replace("@STYLE@", &css_url)
        .replace("@ICON@", &icon_url)
        .replace("@BOOT@", &boot_url)
        .replace("@GLUE@", &glue_url)
        .replace("@WASM@", &wasm_url);
    assets.write(&out, index)?;
    Ok(())
}

/// `cargo build` of the portal and its MLS module for wasm32 (one invocation, one lock), isolated
/// from the outer build's flags and wrappers.
fn build_wasm(root: &Path) -> Result<(PathBuf, PathBuf), Failed> {
    ensure_wasm_target(root)?;
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("wasm"),
        None => root.join("target/wasm"),
    };
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "-p", PORTAL_CRATE, "-p", MLS_CRATE, "--lib", "--target", "wasm32-unknown-unknown"])
        .args(["--profile", "wasm-release"])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build has already brought Cargo.lock up to date.
    command.arg("--locked");
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_LLVM_COV",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        command.env_remove(var);
    }
    let status = command.status()?;
    if !status.success() {
        return Err(format!("building the portal for wasm32 failed ({status}); is the wasm32-unknown-unknown target installed? (rust-toolchain.toml names it)").into());
    }
    let built = target_dir.join("wasm32-unknown-unknown/wasm-release");
    Ok((built.join(WASM_NAME), built.join(MLS_WASM_NAME)))
}

/// Adds the wasm32 target with rustup when the toolchain lacks it: rustup installs the targets
/// `rust-toolchain.toml` names only with the toolchain itself, so a machine that already had
/// 1.95.0 would otherwise fail here.
fn ensure_wasm_target(root: &Path) -> Result<(), Failed> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).current_dir(root).args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    if sysroot.join("lib/rustlib/wasm32-unknown-unknown").is_dir() {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.current_dir(root).args(["target", "add", "wasm32-unknown-unknown"]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    match rustup.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`rustup target add wasm32-unknown-unknown` failed ({status})").into()),
        Err(error) => {
            Err(format!("the wasm32-unknown-unknown target is missing and rustup could not run: {error}").into())
        }
    }
}

/// The hashed, compressed files and the Rust table that serves them.
#[derive(Default)]
struct Assets {
    table: String,
}

impl Assets {
    /// Adds `bytes` as `/assets/{stem}-{hash}.{ext}` (with `.br` and `.gz` beside); its URL.
    fn add(&mut self, stem: &str, ext: &str, content_type: &str, bytes: Vec<u8>) -> Result<String, Failed> {
        let hash = Sha256::digest(&bytes);
        let short: String = hash.iter().take(8).fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let name = format!("{stem}-{short}.{ext}");
        let out = PathBuf::from(env::var("OUT_DIR")?).join("assets");
        fs::create_dir_all(&out)?;
        fs::write(out.join(&name), &bytes)?;
        let mut br = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut br, 64 * 1024, 11, 22);
            writer.write_all(&bytes)?;
        }
        fs::write(out.join(format!("{name}.br")), &br)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        fs::write(out.join(format!("{name}.gz")), gz.finish()?)?;
        let _ = writeln!(
            self.table,
            "    Asset {{ path: \"/assets/{name}\", content_type: \"{content_type}\", plain: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/assets/{name}\")), brotli: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/assets/{name}.br\")), gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/assets/{name}.gz\")) }},"
        );
        Ok(format!("/assets/{name}"))
    }

    fn write(self, out: &Path, index: String) -> Result<(), Failed> {
        fs::write(out.join("index.html"), index)?;
        let code = format!(
            "/// The portal's files, by content hash (generated by build.rs).\npub static ASSETS: &[Asset] = &[\n{}];\n",
            self.table
        );
        fs::write(out.join("portal_assets.rs"), code)?;
        Ok(())
    }
}
