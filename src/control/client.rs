//! The client side of the control socket, used by `leasefs locks`, `lease hold`, `break`.

use super::protocol::{Request, Response, VERSION};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no leasefs daemon is running with state directory {dir} (no control socket at {sock})"
    )]
    NotRunning { dir: String, sock: String },
    #[error("permission denied on {0}: the control socket is root-only")]
    Denied(String),
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon said: {0}")]
    Refused(String),
    #[error("unexpected reply from the daemon: {0}")]
    Protocol(String),
}

pub struct ControlClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    /// Connects to the daemon of `state_dir` and says hello.
    pub fn connect(state_dir: &Path) -> Result<Self, ClientError> {
        let sock = super::socket_path(state_dir);
        let stream = UnixStream::connect(&sock).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning {
                    dir: state_dir.display().to_string(),
                    sock: sock.display().to_string(),
                }
            }
            std::io::ErrorKind::PermissionDenied => ClientError::Denied(sock.display().to_string()),
            _ => ClientError::Io(e),
        })?;
        let mut c = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        // A refusing daemon may answer and hang up before our hello is written; its
        // answer is still waiting to be read.
        let sent = c.send(&Request::Hello { version: VERSION });
        match c.recv().or_else(|e| sent.and(Err(e)))? {
            Some(Response::Hello { .. }) => Ok(c),
            Some(Response::Error { message }) => Err(ClientError::Refused(message)),
            Some(other) => Err(ClientError::Protocol(format!("{other:?}"))),
            None => Err(ClientError::Protocol(
                "connection closed during hello".into(),
            )),
        }
    }

    pub fn send(&mut self, r: &Request) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        Ok(())
    }

    /// The next response, or `None` when the daemon closed the connection.
    pub fn recv(&mut self) -> Result<Option<Response>, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| ClientError::Protocol(format!("{e}: {line}")))
    }

    /// One request, one response; a daemon error becomes `ClientError::Refused`.
    pub fn call(&mut self, r: &Request) -> Result<Response, ClientError> {
        self.send(r)?;
        match self.recv()? {
            Some(Response::Error { message }) => Err(ClientError::Refused(message)),
            Some(resp) => Ok(resp),
            None => Err(ClientError::Protocol("connection closed".into())),
        }
    }

    /// A second handle for writing while another thread reads.
    pub fn writer(&self) -> Result<UnixStream, ClientError> {
        Ok(self.writer.try_clone()?)
    }
}
