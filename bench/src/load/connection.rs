//! One TCP connection to a server: batches written at once, replies read into a reused buffer
//! and parsed in place.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::resp::{BULK_BYTES_MAX, ParseError, Reply, parse_reply};

/// The read buffer's starting size: a batch of small replies fits at once.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// The read buffer's largest size: the largest reply and some.
const READ_BUFFER_BYTES_MAX: usize = BULK_BYTES_MAX + READ_BUFFER_BYTES;
/// How long a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a connection can no longer be used.
#[derive(Debug)]
pub enum ConnectionError {
    /// Reading or writing failed, or the server closed the connection.
    Io(io::Error),
    /// The server sent bytes that are not a reply.
    Protocol(ParseError),
    /// A batch got no complete answer within `--timeout`.
    Timeout,
}

impl ConnectionError {
    /// The kind under which the requests lost with the connection are counted.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectionError::Io(_) => "connection",
            ConnectionError::Protocol(_) => "protocol",
            ConnectionError::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionError::Io(e) => write!(f, "{e}"),
            ConnectionError::Protocol(e) => write!(f, "protocol error: {e}"),
            ConnectionError::Timeout => f.write_str("no reply in time"),
        }
    }
}

/// A connection and its read buffer: `buffer[head..tail]` holds bytes not yet parsed.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    head: usize,
    tail: usize,
}

impl Connection {
    /// Connects to `addr` within [`CONNECT_TIMEOUT`], with Nagle off (a request is written
    /// whole; waiting to coalesce would only add latency).
    ///
    /// # Errors
    /// The connect fails or takes too long.
    pub async fn connect(addr: SocketAddr) -> io::Result<Connection> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: vec![0; READ_BUFFER_BYTES],
            head: 0,
            tail: 0,
        })
    }

    /// Writes `bytes` whole.
    ///
    /// # Errors
    /// The write fails.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(ConnectionError::Io)
    }

    /// The next complete reply in the buffer, without reading: `Ok(None)` when more bytes are
    /// needed. Call [`Connection::consume`] with the length once done with the reply.
    ///
    /// # Errors
    /// The bytes are not a reply.
    pub fn buffered_reply(&self) -> Result<Option<(Reply<'_>, usize)>, ConnectionError> {
        parse_reply(&self.buffer[self.head..self.tail]).map_err(ConnectionError::Protocol)
    }

    /// Drops the first `len` buffered bytes (a reply just handled).
    pub fn consume(&mut self, len: usize) {
        debug_assert!(self.head + len <= self.tail);
        self.head += len;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Reads more bytes into the buffer, making room first.
    ///
    /// # Errors
    /// The read fails, the server closed the connection, or a reply would not fit in
    /// [`READ_BUFFER_BYTES_MAX`].
    pub async fn read_more(&mut self) -> Result<(), ConnectionError> {
        if self.tail == self.buffer.len() {
            if self.head > 0 {
                self.buffer.copy_within(self.head..self.tail, 0);
                self.tail -= self.head;
                self.head = 0;
            } else if self.buffer.len() < READ_BUFFER_BYTES_MAX {
                let size = (self.buffer.len() * 2).min(READ_BUFFER_BYTES_MAX);
                self.buffer.resize(size, 0);
            } else {
                return Err(ConnectionError::Protocol(ParseError::TooLong));
            }
        }
        let n = self
            .stream
            .read(&mut self.buffer[self.tail..])
            .await
            .map_err(ConnectionError::Io)?;
        if n == 0 {
            return Err(ConnectionError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        self.tail += n;
        Ok(())
    }
}
