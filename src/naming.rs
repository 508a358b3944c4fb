//! Source URIs and the names derivatives are written under: plain paths and go-iiif-uri's `file://`,
//! `rewrite://` and `idsecret://` strings. Pure: no I/O.

use crate::iiif::{Format, ImageRequest};
use crate::store::Key;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("invalid source uri {uri:?}: {reason}")]
    Invalid { uri: String, reason: String },
    #[error("-report-template {template:?}: {reason}")]
    Template { template: String, reason: String },
}

/// go-iiif v8's default `-report-template`.
pub const DEFAULT_REPORT_TEMPLATE: &str = "process_{sha256_origin}.json";

/// go-iiif v8's `-report-template`: an RFC 6570 template of a report's name, whose one variable,
/// `sha256_origin`, is the hex SHA-256 of the source's path. Checked once: every expansion is a relative path
/// below the derivatives root (the variable's value is hex, so if one is, all are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTemplate(String);

impl ReportTemplate {
    pub fn new(template: &str) -> Result<ReportTemplate, NamingError> {
        let t = ReportTemplate(template.to_string());
        let invalid = |reason: String| NamingError::Template {
            template: template.to_string(),
            reason,
        };
        let sample = t.expand(&"0".repeat(64)).map_err(invalid)?;
        match clean_relative(&sample) {
            Some(name) if name == sample && !name.ends_with('/') => Ok(t),
            _ => Err(invalid(format!(
                "expands to {sample:?}, which is not a relative file path below the derivatives root"
            ))),
        }
    }

    fn expand(&self, sha256: &str) -> Result<String, String> {
        use iri_string::spec::UriSpec;
        use iri_string::template::simple_context::SimpleContext;
        use iri_string::template::UriTemplateStr;
        use std::fmt::Write;
        let template = UriTemplateStr::new(&self.0).map_err(|e| e.to_string())?;
        let mut context = SimpleContext::new();
        context.insert("sha256_origin", sha256);
        let expanded = template
            .expand::<UriSpec, _>(&context)
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        write!(out, "{expanded}").map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The report's name for the source at `origin`.
    pub fn name(&self, origin: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(origin.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        // Checked in `new` with a value of the same alphabet and length.
        self.expand(&hex).unwrap_or_default()
    }
}

/// How derivative names are made for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// A plain path: `<origin>/<region>/<size>/<rotation>/<quality>.<format>`.
    Plain,
    /// `file:///origin?target=T`: the IIIF layout under `T` (the origin when no target is given).
    File { target: String },
    /// `rewrite:///origin?target=T`: the derivative is written at exactly `T`.
    Rewrite { target: String },
    /// `idsecret:///origin?id=N…`: `<tree>/<id>_<secret>_<label>.<format>`.
    IdSecret {
        id: String,
        secret: Option<String>,
        secret_o: Option<String>,
        /// Replaces the tree made from the id (`root=`, or go-iiif's `prefix=`).
        root: Option<String>,
    },
}

/// A `-uri` value: where the source is read from (relative to the source root) and how outputs are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUri {
    /// The string as given; the report's key.
    pub given: String,
    /// The source's path relative to the source root ('/'-separated, no `..`, no leading '/').
    pub origin: String,
    pub scheme: Scheme,
}

/// A relative path that stays below its root: a store [`Key`], and no part that is `..` once decoded.
fn clean_relative(path: &str) -> Option<String> {
    let key = Key::new(path).ok()?;
    // `%2e%2e` is `..` once any web layer decodes it: refused like `..` itself.
    let encoded_dots = key
        .as_str()
        .split('/')
        .any(|c| c.eq_ignore_ascii_case("%2e%2e"));
    (!encoded_dots).then(|| key.as_str().to_string())
}

/// Characters that may appear in a secret: it becomes part of a file name.
fn valid_secret(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FromStr for SourceUri {
    type Err = NamingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| NamingError::Invalid {
            uri: s.into(),
            reason: reason.into(),
        };
        let Some((scheme, rest)) = split_scheme(s) else {
            // `-uri .`: the whole source root, every image below it.
            if s == "." || s == "./" {
                return Ok(SourceUri {
                    given: s.to_string(),
                    origin: String::new(),
                    scheme: Scheme::Plain,
                });
            }
            let origin = clean_relative(s)
                .ok_or_else(|| invalid("must name a file below the source root"))?;
            return Ok(SourceUri {
                given: s.to_string(),
                origin,
                scheme: Scheme::Plain,
            });
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| invalid("the path is not UTF-8 once percent-decoded"))?;
        let origin = clean_relative(&path)
            .ok_or_else(|| invalid("the path must name a file below the source root"))?;
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if params.iter().any(|(seen, _)| *seen == k) {
                return Err(invalid(&format!("parameter {k:?} is given twice")));
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let allowed: &[&str] = match scheme.as_str() {
            "file" | "rewrite" => &["target"],
            // label, format, original and ensure-int are go-iiif-uri's; labels and formats come from the
            // instructions here and ids are always checked, so they are accepted and have no effect.
            "idsecret" => &[
                "id",
                "secret",
                "secret_o",
                "root",
                "prefix",
                "label",
                "format",
                "original",
                "ensure-int",
            ],
            other => {
                return Err(invalid(&format!(
                    "unknown scheme {other:?} (plain paths, file://, rewrite:// and idsecret:// are accepted)"
                )))
            }
        };
        if let Some((k, _)) = params.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(invalid(&format!(
                "unknown parameter {k:?} for {scheme}:// (accepted: {})",
                allowed.join(", ")
            )));
        }
        let target = |required: bool| -> Result<Option<String>, NamingError> {
            match get("target") {
                None if required => Err(invalid("rewrite:// needs ?target=")),
                None => Ok(None),
                Some(t) => clean_relative(t)
                    .filter(|t| !t.ends_with('/'))
                    .map(Some)
                    .ok_or_else(|| {
                        invalid(&format!(
                            "target {t:?} must be a path below the derivatives root"
                        ))
                    }),
            }
        };
        let scheme = match scheme.as_str() {
            "file" => Scheme::File {
                target: target(false)?.unwrap_or_else(|| origin.clone()),
            },
            "rewrite" => Scheme::Rewrite {
                target: target(true)?.unwrap_or_default(),
            },
            _ => {
                let id = get("id").ok_or_else(|| invalid("idsecret:// needs ?id="))?;
                if !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(&format!("id {id:?} is not a number")));
                }
                let secret = |k: &str| match get(k) {
                    Some(v) if !valid_secret(v) => Err(invalid(&format!(
                        "{k} {v:?} may hold only letters, digits, '-' and '_'"
                    ))),
                    v => Ok(v.map(str::to_string)),
                };
                let root = match get("root").or(get("prefix")) {
                    None => None,
                    Some(r) => Some(clean_relative(r.trim_end_matches('/')).ok_or_else(|| {
                        invalid(&format!(
                            "root {r:?} must be a path below the derivatives root"
                        ))
                    })?),
                };
                Scheme::IdSecret {
                    id: id.to_string(),
                    secret: secret("secret")?,
                    secret_o: secret("secret_o")?,
                    root,
                }
            }
        };
        Ok(SourceUri {
            given: s.to_string(),
            origin,
            scheme,
        })
    }
}

/// `scheme://rest`, with the scheme lower-cased; `None` for a plain path.
fn split_scheme(s: &str) -> Option<(String, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then(|| (scheme.to_ascii_lowercase(), rest))
}

/// go-iiif-uri's tree for an id: groups of three digits from the left, `1234567` -> `123/456/7`.
pub fn id_tree(id: &str) -> String {
    id.as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/")
}

/// The hex SHA-1 of `bytes`: a source's fingerprint, in its reports and its derivatives' names.
pub fn fingerprint(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A secret derived from the id and the source's fingerprint, so reruns land on the same names:
/// the first 16 hex digits of sha1(`iiif-process:<kind>:<id>:<fingerprint>`).
pub fn derived_secret(kind: &str, id: &str, fingerprint: &str) -> String {
    let digest = self::fingerprint(format!("iiif-process:{kind}:{id}:{fingerprint}").as_bytes());
    digest[..16].to_string()
}

impl SourceUri {
    /// The path of one derivative relative to the derivatives root. `fingerprint` is the hex sha1 of the
    /// source bytes (idsecret's secrets are derived from it when the URI gives none).
    pub fn derivative_path(
        &self,
        label: &str,
        request: &ImageRequest,
        format: Format,
        fingerprint: &str,
    ) -> String {
        match &self.scheme {
            Scheme::Plain => format!("{}/{}", self.origin, request.path(format)),
            Scheme::File { target } => format!("{target}/{}", request.path(format)),
            Scheme::Rewrite { target } => target.clone(),
            Scheme::IdSecret { id, .. } => {
                let (secret, secret_o) = self.secrets(fingerprint);
                let secret = if label == "o" { secret_o } else { secret };
                format!(
                    "{}/{id}_{secret}_{label}.{}",
                    self.tree(),
                    format.extension()
                )
            }
        }
    }

    /// idsecret's `(secret, secret_o)`: as given, or derived from the id and fingerprint.
    fn secrets(&self, fingerprint: &str) -> (String, String) {
        match &self.scheme {
            Scheme::IdSecret {
                id,
                secret,
                secret_o,
                ..
            } => (
                secret
                    .clone()
                    .unwrap_or_else(|| derived_secret("secret", id, fingerprint)),
                secret_o
                    .clone()
                    .unwrap_or_else(|| derived_secret("secret_o", id, fingerprint)),
            ),
            _ => Default::default(),
        }
    }

    /// idsecret's directory: `root=` or the id's tree.
    fn tree(&self) -> String {
        match &self.scheme {
            Scheme::IdSecret {
                root: Some(root), ..
            } => root.clone(),
            Scheme::IdSecret { id, .. } => id_tree(id),
            _ => String::new(),
        }
    }

    /// A plain path (no naming scheme): the only kind that may name a directory of sources.
    pub fn is_plain(&self) -> bool {
        self.scheme == Scheme::Plain
    }

    /// Where the `-report` file named `name` goes, relative to the derivatives root. Beside the derivatives;
    /// for idsecret it carries the original's secret, since it lists every secret name.
    pub fn report_key(&self, name: &str, fingerprint: &str) -> String {
        match &self.scheme {
            Scheme::Plain => format!("{}/{name}", self.origin),
            Scheme::File { target } => format!("{target}/{name}"),
            Scheme::Rewrite { target } => format!("{target}.{name}"),
            Scheme::IdSecret { id, .. } => {
                format!(
                    "{}/{id}_{}_{name}",
                    self.tree(),
                    self.secrets(fingerprint).1
                )
            }
        }
    }

    /// The directory of the source's IIIF image service (tiles, info.json, canonical copies), relative to the
    /// derivatives root: the derivatives' own directory; for rewrite://, `<target>.iiif` (the target is a file);
    /// for idsecret, `<tree>/<id>_<secret_o>`, the original's secret, since tiles rebuild the original.
    pub fn service_key(&self, fingerprint: &str) -> String {
        match &self.scheme {
            Scheme::Plain => self.origin.clone(),
            Scheme::File { target } => target.clone(),
            Scheme::Rewrite { target } => format!("{target}.iiif"),
            Scheme::IdSecret { id, .. } => {
                format!("{}/{id}_{}", self.tree(), self.secrets(fingerprint).1)
            }
        }
    }

    /// The source as go-iiif v8 writes it in `origin_uri`: a plain path as `file:///path`, a URI as given.
    pub fn v8_origin_uri(&self) -> String {
        match self.scheme {
            Scheme::Plain => format!("file:///{}", self.origin),
            _ => self.given.clone(),
        }
    }

    /// For rewrite://, the one path every derivative would be written at.
    pub fn fixed_target(&self) -> Option<&str> {
        match &self.scheme {
            Scheme::Rewrite { target } => Some(target),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> SourceUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn req(s: &str) -> ImageRequest {
        let p: Vec<&str> = s.split('/').collect();
        ImageRequest::parse(p[0], p[1], p[2], p[3], p[4]).unwrap()
    }
    const FP: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn plain_and_file_use_the_iiif_layout() {
        let r = req("full/!2048,1536/0/default/jpg");
        let want = "source/IMG_0084.JPG/full/!2048,1536/0/color.jpg";
        assert_eq!(
            uri("source/IMG_0084.JPG").derivative_path("k", &r, Format::Jpg, FP),
            want
        );
        let f = uri("file:///source/IMG_0084.JPG");
        assert_eq!(f.origin, "source/IMG_0084.JPG");
        assert_eq!(f.derivative_path("k", &r, Format::Jpg, FP), want);
        assert!(!f.is_plain());
    }

    #[test]
    fn the_image_service_lives_beside_the_derivatives() {
        assert_eq!(uri("a/b.jpg").service_key(FP), "a/b.jpg");
        assert_eq!(uri("file:///a/b.jpg?target=c/d").service_key(FP), "c/d");
        assert_eq!(
            uri("rewrite:///a/b.jpg?target=c/d.jpg").service_key(FP),
            "c/d.jpg.iiif"
        );
        assert_eq!(
            uri("idsecret:///a/b.jpg?id=1234&secret=s&secret_o=o").service_key(FP),
            "123/4/1234_o"
        );
    }

    #[test]
    fn file_target_renames_the_tree() {
        let f = uri("file:///source/IMG_0084.JPG?target=new/name.jpg");
        assert_eq!(f.origin, "source/IMG_0084.JPG");
        let r = req("full/full/0/default/png");
        assert_eq!(
            f.derivative_path("o", &r, Format::Png, FP),
            "new/name.jpg/full/full/0/color.png"
        );
        assert_eq!(
            f.report_key("process.json", FP),
            "new/name.jpg/process.json"
        );
        // go-iiif-uri's documented form, with a leading slash on the target.
        let f = uri("file:///path/to/source/image.jpg?target=/path/to/target/image.jpg");
        assert_eq!(f.origin, "path/to/source/image.jpg");
        assert_eq!(
            f.derivative_path("o", &r, Format::Png, FP),
            "path/to/target/image.jpg/full/full/0/color.png"
        );
    }

    #[test]
    fn rewrite_writes_at_the_target() {
        let w = uri("rewrite:///path/to/source/image.jpg?target=/path/to/target/picture.jpg");
        assert_eq!(w.origin, "path/to/source/image.jpg");
        let r = req("full/!300,300/0/default/jpg");
        assert_eq!(
            w.derivative_path("b", &r, Format::Jpg, FP),
            "path/to/target/picture.jpg"
        );
        assert_eq!(w.fixed_target(), Some("path/to/target/picture.jpg"));
        assert_eq!(
            w.report_key("process.json", FP),
            "path/to/target/picture.jpg.process.json"
        );
    }

    #[test]
    fn idsecret_names() {
        let u = uri("idsecret:///source/IMG_0084.JPG?id=1234&secret=s33kret&secret_o=seekr3t");
        let r = req("full/!1024,768/0/default/jpg");
        assert_eq!(
            u.derivative_path("b", &r, Format::Jpg, FP),
            "123/4/1234_s33kret_b.jpg"
        );
        assert_eq!(
            u.derivative_path("o", &r, Format::Png, FP),
            "123/4/1234_seekr3t_o.png"
        );
        assert_eq!(
            u.report_key("process.json", FP),
            "123/4/1234_seekr3t_process.json"
        );
        // go-iiif-uri's documented example id.
        let u = uri("idsecret:///path/to/source/image.jpg?id=34436377369&secret=s33kret&secret_o=seekr3t&label");
        assert_eq!(
            u.derivative_path("b", &r, Format::Jpg, FP),
            "344/363/773/69/34436377369_s33kret_b.jpg"
        );
        let u = uri("idsecret:///a.jpg?id=1234&secret=x&secret_o=y&root=pub/photos/");
        assert_eq!(
            u.derivative_path("b", &r, Format::Jpg, FP),
            "pub/photos/1234_x_b.jpg"
        );
        let u = uri("idsecret:///a.jpg?id=1234&secret=x&secret_o=y&prefix=p");
        assert_eq!(
            u.derivative_path("b", &r, Format::Jpg, FP),
            "p/1234_x_b.jpg"
        );
    }

    #[test]
    fn id_tree_for_1_to_19_digits() {
        let digits = "1234567890123456789";
        for n in 1..=19 {
            let id = &digits[..n];
            let tree = id_tree(id);
            let parts: Vec<&str> = tree.split('/').collect();
            assert_eq!(parts.concat(), id, "{id}");
            assert_eq!(parts.len(), n.div_ceil(3), "{id}: {tree}");
            let (last, full) = parts.split_last().unwrap();
            assert!(full.iter().all(|p| p.len() == 3), "{id}: {tree}");
            assert_eq!(
                last.len(),
                if n % 3 == 0 { 3 } else { n % 3 },
                "{id}: {tree}"
            );
        }
        assert_eq!(id_tree("1"), "1");
        assert_eq!(id_tree("123"), "123");
        assert_eq!(id_tree("1234"), "123/4");
        assert_eq!(id_tree("1234567"), "123/456/7");
        assert_eq!(id_tree("1234567890123456789"), "123/456/789/012/345/678/9");
    }

    #[test]
    fn idsecret_derived_secrets_are_stable_and_depend_on_id_and_source() {
        let u = uri("idsecret:///a.jpg?id=1234");
        let r = req("full/full/0/default/jpg");
        let a = u.derivative_path("b", &r, Format::Jpg, FP);
        assert_eq!(a, u.derivative_path("b", &r, Format::Jpg, FP));
        let secret = derived_secret("secret", "1234", FP);
        assert_eq!(a, format!("123/4/1234_{secret}_b.jpg"));
        assert_eq!(secret.len(), 16);
        assert_ne!(secret, derived_secret("secret_o", "1234", FP));
        assert_ne!(secret, derived_secret("secret", "1235", FP));
        assert_ne!(
            secret,
            derived_secret("secret", "1234", &FP.replace('0', "f"))
        );
        let o = u.derivative_path("o", &r, Format::Jpg, FP);
        assert_eq!(
            o,
            format!(
                "123/4/1234_{}_o.jpg",
                derived_secret("secret_o", "1234", FP)
            )
        );
        // Only the missing one is derived.
        let u = uri("idsecret:///a.jpg?id=1234&secret=given");
        assert_eq!(
            u.derivative_path("b", &r, Format::Jpg, FP),
            "123/4/1234_given_b.jpg"
        );
        assert_eq!(o, u.derivative_path("o", &r, Format::Jpg, FP));
    }

    #[test]
    fn report_templates_as_go_iiif_v8() {
        let t = ReportTemplate::new(DEFAULT_REPORT_TEMPLATE).unwrap();
        // go-iiif's documented example: hex(sha256("test.jpg")).
        assert_eq!(
            t.name("test.jpg"),
            "process_0d407ee6406a1216f2366674a1a9ff71361d5bef47021f8eb8b51f95e319dd56.json"
        );
        assert_eq!(
            ReportTemplate::new("report.json").unwrap().name("a"),
            "report.json"
        );
        let t = ReportTemplate::new("reports/{sha256_origin}{unknown}.json").unwrap();
        assert_eq!(t.name("test.jpg").len(), "reports/.json".len() + 64);
        for bad in [
            "{",
            "../{sha256_origin}",
            "/abs.json",
            "a/",
            "{sha256_origin}/../../x",
            "",
        ] {
            let e = ReportTemplate::new(bad).expect_err(bad).to_string();
            assert!(e.starts_with(&format!("-report-template {bad:?}")), "{e}");
        }
        assert_eq!(uri("a/b.jpg").v8_origin_uri(), "file:///a/b.jpg");
        assert_eq!(uri("file:///a/b.jpg").v8_origin_uri(), "file:///a/b.jpg");
    }

    #[test]
    fn decoding() {
        let u = uri("file:///source/IMG%200084.JPG?target=a+b%2Fc.jpg");
        assert_eq!(u.origin, "source/IMG 0084.JPG");
        assert_eq!(
            u.scheme,
            Scheme::File {
                target: "a b/c.jpg".into()
            }
        );
        assert_eq!(u.given, "file:///source/IMG%200084.JPG?target=a+b%2Fc.jpg");
        assert_eq!(uri("FILE:///a.jpg").origin, "a.jpg");
    }

    #[test]
    fn malformed_uris_are_refused_with_their_reason() {
        for (s, why) in [
            ("s3://bucket/a.jpg", "unknown scheme"),
            ("http://example.org/a.jpg", "unknown scheme"),
            ("idsecret:///a.jpg", "needs ?id="),
            ("idsecret:///a.jpg?id=12a4", "not a number"),
            ("idsecret:///a.jpg?id=-1", "not a number"),
            ("idsecret:///a.jpg?id=1&secret=a/b", "may hold only"),
            (
                "idsecret:///a.jpg?id=1&root=../x",
                "below the derivatives root",
            ),
            ("rewrite:///a.jpg", "needs ?target="),
            ("rewrite:///a.jpg?target=", "needs ?target="),
            (
                "rewrite:///a.jpg?target=../../etc/passwd",
                "below the derivatives root",
            ),
            (
                "rewrite:///a.jpg?target=x/%2e%2e/%2e%2e/y",
                "below the derivatives root",
            ),
            ("rewrite:///a.jpg?target=dir/", "below the derivatives root"),
            ("file:///a.jpg?target=../x", "below the derivatives root"),
            ("file:///a.jpg?trget=x", "unknown parameter"),
            ("file:///a.jpg?target=x&target=y", "twice"),
            ("file:///../a.jpg", "below the source root"),
            ("file:///%2e%2e/a.jpg", "below the source root"),
            ("file:///", "below the source root"),
            ("../a.jpg", "below the source root"),
            ("", "below the source root"),
        ] {
            let e = s.parse::<SourceUri>().expect_err(s).to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains(&format!("{s:?}")), "{s}: {e}");
        }
    }
}
