//! Shared helpers for the integration tests.
//!
//! Use from a test file with `mod common;` and then `common::fixture("landscape.jpg")`.
//! The files themselves are described in `tests/fixtures/README.md` and
//! `tests/hostile/README.md`.

#![allow(dead_code)]

/// The hex SHA-1 of `bytes`, made here and not by the code under test.
pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub mod azurite;
pub mod emulator;
pub mod gcs;
pub mod moto;
pub mod relay;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Path of the `iiif-process` binary that Cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iiif-process"))
}

/// Root of the crate (where `Cargo.toml` is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a file in `tests/fixtures/`. Panics if it does not exist, so a
/// mistyped name fails loudly instead of looking like a processing error.
pub fn fixture(name: &str) -> PathBuf {
    existing(root().join("tests").join("fixtures").join(name))
}

/// Path of a file in `tests/hostile/`. Panics if it does not exist.
pub fn hostile(name: &str) -> PathBuf {
    existing(root().join("tests").join("hostile").join(name))
}

/// Path of a file in `examples/` (e.g. `example("source/IMG_0084.JPG")`).
pub fn example(name: &str) -> PathBuf {
    existing(root().join("examples").join(name))
}

fn existing(p: PathBuf) -> PathBuf {
    assert!(p.exists(), "test file missing: {}", p.display());
    p
}

/// Decodes an image file, guessing the format from its content (not its
/// name). Pixels are returned as stored: EXIF orientation is NOT applied.
/// Panics with the path and the decoder's message on failure.
pub fn decode(path: impl AsRef<Path>) -> DynamicImage {
    let path = path.as_ref();
    ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        .decode()
        .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()))
}

/// Like [`decode`], then applies the file's EXIF orientation, so the result
/// is the image as it should be displayed.
pub fn decode_oriented(path: impl AsRef<Path>) -> DynamicImage {
    let path = path.as_ref();
    let mut decoder = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        .into_decoder()
        .unwrap_or_else(|e| panic!("cannot read header of {}: {e}", path.display()));
    let orientation = decoder
        .orientation()
        .unwrap_or_else(|e| panic!("cannot read orientation of {}: {e}", path.display()));
    let mut img = DynamicImage::from_decoder(decoder)
        .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()));
    img.apply_orientation(orientation);
    img
}

/// Per-channel mean absolute difference between two RGB images, in 0..=255.
/// If `b` has a different size it is first resized to `a`'s size (Triangle
/// filter), so a derivative can be compared with a scaled master.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let resized;
    let b = if a.dimensions() == b.dimensions() {
        b
    } else {
        resized = image::imageops::resize(
            b,
            a.width(),
            a.height(),
            image::imageops::FilterType::Triangle,
        );
        &resized
    };
    let n = a.as_raw().len();
    if n == 0 {
        return 0.0;
    }
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw().iter())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / n as f64
}

/// Runs the binary with `args` (no shell, no stdin) from the crate root and
/// returns its output, whatever its exit status.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin().display()))
}

/// Like [`run`] but panics, showing stdout and stderr, unless it succeeded.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "iiif-process {args:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Parses a command's stdout as JSON, panicking with the text if it is not.
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A fresh temporary directory, removed when the value is dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a temporary directory")
}

/// A throwaway setup: `src/` holding the named fixtures, `out/` for derivatives, and a config and instructions
/// file written from the given JSON.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

/// A config enabling go-iiif's dither and crisp qualities and all three services.
pub const FULL_CONFIG: &str = r#"{
  "profile": {"services": {"enable": ["palette", "blurhash", "imagehash"]}},
  "features": {"append": {"quality": {"dither": {"syntax": "dither", "supported": true},
                                       "crisp": {"syntax": "crisp", "supported": true}}}},
  "images": {"source": {"name": "Disk", "path": "src"}},
  "derivatives": {"cache": {"name": "Disk", "path": "out"}},
  "palette": {"extruder": {"name": "vibrant", "count": 5}, "grid": {"name": "euclidian"},
              "palettes": [{"name": "crayola"}, {"name": "css4"}]}
}"#;

impl Setup {
    /// `files` are (name in src/, path of the file to copy).
    pub fn new(config: &str, instructions: &str, files: &[(&str, PathBuf)]) -> Setup {
        let dir = tempdir();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        for (name, from) in files {
            let to = dir.path().join("src").join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        std::fs::write(dir.path().join("instructions.json"), instructions).unwrap();
        Setup { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The command with `-config` and `-instructions` of this setup plus `args`, run in the setup's directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("-config")
            .arg(self.path("config.json"))
            .arg("-instructions")
            .arg(self.path("instructions.json"))
            .args(args)
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs with `-config` and `-instructions` of this setup plus `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// As `run`, with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        run_piped(self.command(args), input)
    }

    /// Decoded derivative `rel` under out/.
    pub fn output(&self, rel: &str) -> DynamicImage {
        decode(self.path("out").join(rel))
    }
}

/// Runs `cmd` with `input` on its standard input, collecting its output.
pub fn run_piped(mut cmd: Command, input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A run that exits early (a usage error) closes its end: that is not the test's failure.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// The exit code, with stderr shown when it is not the expected one.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A JPEG's image proper: from its (last) frame header to the end, the bytes a re-mux that only replaces the
/// descriptive segments (EXIF, XMP, IPTC) keeps as they are. Entropy-coded data never holds a 0xFF 0xC0..0xC2
/// pair (a 0xFF there is stuffed with 0x00), and an EXIF thumbnail's frame header comes before the main one.
pub fn jpeg_image_data(bytes: &[u8]) -> &[u8] {
    let at = bytes
        .windows(2)
        .rposition(|w| w[0] == 0xFF && (0xC0..=0xC2).contains(&w[1]))
        .expect("a JPEG frame header");
    &bytes[at..]
}
