//! Socket reads that cost one `recv` per batch of requests, not two.

use std::io::Read;

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Reads what the socket holds into `input`, without the extra `recv` that only learns
/// the socket is empty.
///
/// The runtime forgets that a socket is readable only when a read fails with `WouldBlock`,
/// so the plain way costs a second `recv` per request (about one syscall in three). A read
/// that did not fill the space it was given has emptied the socket: it is reported as
/// `WouldBlock` to the runtime, which then waits for the next readiness event (edge
/// triggered, so bytes that arrive meanwhile raise a new one and are not missed), while the
/// bytes read are returned here.
pub fn read_available(stream: &TcpStream, input: &mut BytesMut) -> std::io::Result<usize> {
    let space = input.capacity() - input.len();
    let mut read = None;
    let outcome = stream.try_io(tokio::io::Interest::READABLE, || {
        let n = stream.try_read_buf(input)?;
        read = Some(n);
        if n > 0 && n < space {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (outcome, read) {
        (_, Some(n)) => Ok(n),
        (Err(e), None) => Err(e),
        (Ok(n), None) => Ok(n),
    }
}

/// Waits until the socket is readable and reads what it holds into `input`; 0 at the end
/// of the stream. [`read_available`] in a loop, for the peer links.
///
/// # Errors
/// The socket's.
pub async fn read_some(stream: &TcpStream, input: &mut BytesMut) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match read_available(stream, input) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Reads what the socket holds into `input`'s spare capacity now, whatever the runtime last
/// learnt of its readiness; `WouldBlock` if it holds nothing. For the last read of a client
/// when the server stops: [`read_available`] may have marked the socket not readable.
///
/// # Errors
/// The socket's.
pub fn read_now(stream: &TcpStream, input: &mut BytesMut) -> std::io::Result<usize> {
    let len = input.len();
    input.resize(input.capacity(), 0);
    let read = (&*socket2::SockRef::from(stream)).read(&mut input[len..]);
    input.truncate(len + *read.as_ref().unwrap_or(&0));
    read
}
