//! `leasefs serve --metrics-listen`: SMB connections and sessions are counted, and the
//! lock-manager metrics are served beside them.

mod smb_common;

use smb_common::Server;
use std::io::{Read, Write};

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn metric(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[test]
fn smb_connections_and_sessions_are_counted() {
    // A free port for the metrics listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let srv = Server::start(&["--metrics-listen", &listen]);
    let body = scrape(port);
    assert_eq!(metric(&body, "leasefs_smb_sessions_total "), 0);
    assert_eq!(metric(&body, "leasefs_leases{state=\"RWH\"} "), 0);
    let a = Server::user_auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let cwd = tempfile::tempdir().unwrap();
    let (ok, out) = srv.smbclient("SMB3_11", &a, "ls", cwd.path());
    assert!(ok, "{out}");
    let t0 = std::time::Instant::now();
    loop {
        let body = scrape(port);
        if metric(&body, "leasefs_smb_connections ") == 0
            && metric(&body, "leasefs_smb_sessions ") == 0
        {
            assert!(
                metric(&body, "leasefs_smb_connections_total ") >= 1,
                "{body}"
            );
            assert_eq!(metric(&body, "leasefs_smb_sessions_total "), 1, "{body}");
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "connection and session never ended: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
