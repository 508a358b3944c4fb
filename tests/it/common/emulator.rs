//! A storage emulator run by a test: a child process on a free loopback port, its output kept in a file, killed
//! when dropped. Azurite, gcp-storage-emulator and fake-gcs-server print one access-log line per request
//! (`"PUT /path?query HTTP/1.1" 201 -`), as moto does; [`Emulator::requests`] reads them back.
//!
//! The tests that need one are `#[ignore]`d, so that a plain `cargo test` shows them as ignored rather than
//! passing without running; under `--include-ignored` (as `.ci/run` runs them) a missing emulator is a failure
//! that says what to install.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Where the log stood at [`Emulator::start_recording`].
    mark: std::cell::Cell<usize>,
}

/// What to run: the program, its arguments for a port, its environment, and how to install it.
pub struct Spec<'a> {
    pub program: &'a str,
    pub args: &'a dyn Fn(u16) -> Vec<String>,
    pub env: &'a [(&'a str, &'a str)],
    pub install: &'a str,
}

/// Start `spec` on a free loopback port; panics, naming what to install, when the program is missing.
pub fn start(spec: &Spec) -> Emulator {
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("no free loopback port")
            .port();
        if let Some(e) = start_on(spec, port) {
            return e;
        }
    }
    panic!("{} did not start", spec.program);
}

fn start_on(spec: &Spec, port: u16) -> Option<Emulator> {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let spawned = Command::new(spec.program)
        .args((spec.args)(port))
        .envs(spec.env.iter().copied())
        // Anything the emulator keeps on disk stays in the test's directory.
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{} is not on PATH ({}); the object storage tests need it",
            spec.program, spec.install
        ),
        Err(e) => panic!("cannot start {}: {e}", spec.program),
    };
    let mut emulator = Emulator {
        child,
        port,
        dir,
        mark: Default::default(),
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(_)) = emulator.child.try_wait() {
            break; // exited: the port was taken, or the emulator is broken
        }
        if emulator.request("GET", "/", &[]).is_some() {
            return Some(emulator);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{} on port {port} did not come up:\n{}",
        spec.program,
        emulator.log()
    );
    None
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers (names lower-cased) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Emulator {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the emulator printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A plain HTTP/1.0 request with `headers` and no body; `None` if the server did not answer.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
    ) -> Option<Answer> {
        self.send(method, target, headers, &[])
    }

    /// As [`Emulator::request`], with a body.
    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Option<Answer> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut head = format!(
            "{method} {target} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).ok()?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Answer {
            status,
            headers,
            body: response[split + 4..].to_vec(),
        })
    }

    /// Record every request the server gets from now on (earlier ones are forgotten).
    pub fn start_recording(&self) {
        self.mark.set(self.log().len());
    }

    /// The requests since [`Emulator::start_recording`] as (method, decoded path, query), from the access log.
    /// Emulators log a request after answering it, so the log is read once it has stopped growing.
    pub fn requests(&self) -> Vec<(String, String, String)> {
        let mut log = self.log();
        for _ in 0..25 {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.log();
            if now.len() == log.len() {
                break;
            }
            log = now;
        }
        log[self.mark.get().min(log.len())..]
            .lines()
            .filter_map(|line| {
                // fake-gcs-server wraps the access-log line in a quoted message, its quotes escaped.
                let line = line.replace("\\\"", "\"");
                let request = line
                    .split('"')
                    .find(|part| part.split(' ').count() == 3 && part.contains(" HTTP/"))?;
                let mut words = request.split(' ');
                let (method, target) = (words.next()?, words.next()?);
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let path = percent_encoding::percent_decode_str(path)
                    .decode_utf8_lossy()
                    .into_owned();
                Some((method.to_string(), path, query.to_string()))
            })
            .collect()
    }
}
