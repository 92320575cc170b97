//! The socket: `wss://.../ws` over TLS, the access token in the first frame (never the URL),
//! requests matched to their answers by id, everything else kept in arrival order for
//! [`crate::Device::next_event`].

use std::collections::VecDeque;
use std::time::Duration;

use confidant_protocol::{ClientFrame, SUBPROTOCOL, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};
use uuid::Uuid;

use crate::ClientError;
use crate::api::Api;

/// How long a request waits for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// An authenticated socket.
pub struct Connection {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    inbox: VecDeque<ServerFrame>,
}

impl Connection {
    /// Opens the socket and authenticates with `api`'s access token.
    pub async fn open(api: &Api) -> Result<Self, ClientError> {
        let base =
            api.server.base.strip_prefix("https://").ok_or(ClientError::Protocol("the server URL is not https"))?;
        let mut request = format!("wss://{base}/ws").into_client_request().map_err(ClientError::Socket)?;
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(SUBPROTOCOL));
        let connector = Connector::Rustls(api.server.tls.clone());
        let (stream, _) = connect_async_tls_with_config(request, None, true, Some(connector)).await?;
        let mut connection = Self { stream, inbox: VecDeque::new() };
        connection.send(&ClientFrame::auth(api.token().to_owned())).await?;
        let welcome = connection.read(REQUEST_TIMEOUT).await?.ok_or(ClientError::Closed)?;
        if !matches!(welcome, ServerFrame::Welcome { .. }) {
            return Err(ClientError::Protocol("the server did not accept the token"));
        }
        Ok(connection)
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let text = serde_json::to_string(frame).map_err(|_| ClientError::Protocol("the frame does not encode"))?;
        self.stream.send(Message::Text(text.into())).await.map_err(ClientError::Socket)
    }

    /// Sends the request that `frame` makes of a fresh request id, and waits for the frame
    /// answering it (an `error` frame is [`ClientError::Refused`]); frames arriving meanwhile
    /// are kept for [`Connection::next`].
    pub async fn request(&mut self, frame: impl FnOnce(String) -> ClientFrame) -> Result<ServerFrame, ClientError> {
        let id = Uuid::new_v4().simple().to_string();
        self.send(&frame(id.clone())).await?;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.read(left).await?.ok_or(ClientError::Timeout)?;
            if frame.request_id() == Some(id.as_str()) {
                if let ServerFrame::Error { code, .. } = frame {
                    return Err(ClientError::Refused { status: 0, code: code.as_str().to_owned() });
                }
                return Ok(frame);
            }
            self.keep(frame);
        }
    }

    /// Sends the request that `frame` makes of a fresh request id, without waiting for its
    /// answer (acknowledgements).
    pub async fn notify(&mut self, frame: impl FnOnce(String) -> ClientFrame) -> Result<(), ClientError> {
        self.send(&frame(format!("n{}", Uuid::new_v4().simple()))).await
    }

    /// The next frame that is not an answer to a request, within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<ServerFrame>, ClientError> {
        if let Some(frame) = self.inbox.pop_front() {
            return Ok(Some(frame));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(frame) = self.read(left).await? else { return Ok(None) };
            if is_answer(&frame) {
                continue; // an acknowledgement of a notification
            }
            return Ok(Some(frame));
        }
    }

    fn keep(&mut self, frame: ServerFrame) {
        if !is_answer(&frame) {
            self.inbox.push_back(frame);
        }
    }

    /// Reads one text frame (answering pings is tungstenite's), `None` on timeout.
    async fn read(&mut self, wait: Duration) -> Result<Option<ServerFrame>, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            match next {
                Err(_) => return Ok(None),
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Err(ClientError::Closed),
                Ok(Some(Err(error))) => return Err(ClientError::Socket(error)),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str(&text)
                        .map(Some)
                        .map_err(|_| ClientError::Protocol("not a server frame"));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// An answer to some request (acks and errors of notifications carry an id and nothing else
/// of interest here).
fn is_answer(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Ack { .. } | ServerFrame::Error { id: Some(_), .. })
}
