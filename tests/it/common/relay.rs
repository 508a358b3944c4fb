//! A TCP relay on a loopback port to a server on another loopback port, which can be stopped (its port then
//! refuses connections, and the connections through it are cut) and started again on the same port. It stands
//! in for a server that goes away and comes back with its state: a moto server restarted for real would come
//! back empty, without the buckets a run writes to.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a relay listens: a backstop so that no test can leave one running.
const LIFETIME: Duration = Duration::from_secs(120);

pub struct Relay {
    port: u16,
    target: u16,
    running: Option<Running>,
}

struct Running {
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    thread: JoinHandle<()>,
}

impl Relay {
    /// A relay on a free loopback port to `127.0.0.1:target`, listening.
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("no free loopback port");
        let port = listener.local_addr().unwrap().port();
        Relay {
            port,
            target,
            running: Some(listen(listener, target)),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Close the port and cut every connection through it.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::SeqCst);
            let _ = r.thread.join();
            for c in r.connections.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Listen on the same port again.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "the relay is running");
        let listener =
            TcpListener::bind(("127.0.0.1", self.port)).expect("the relay's port was taken");
        self.running = Some(listen(listener, self.target));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn listen(listener: TcpListener, target: u16) -> Running {
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(Mutex::new(Vec::new()));
    let thread = {
        let (stop, connections) = (stop.clone(), connections.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let _ = client.set_nonblocking(false);
                        let mut kept = connections.lock().unwrap();
                        for s in [&client, &server] {
                            if let Ok(c) = s.try_clone() {
                                kept.push(c);
                            }
                        }
                        pipe(&client, &server);
                        pipe(&server, &client);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
            // The listener is dropped here: the port refuses connections from now on.
        })
    };
    Running {
        stop,
        connections,
        thread,
    }
}

/// Copy from `from` to `to` on a thread of its own, until either end closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
