//! A WebSocket client over TLS (tokio-tungstenite with rustls), trusting exactly the test
//! server's development certificate, as the Rust client will connect.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};

use crate::helpers::TestApp;

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Option<String>,
}

/// What arrived.
#[derive(Debug, PartialEq)]
pub enum Event {
    Frame(Value),
    Closed(Option<u16>),
    Nothing,
}

fn connector(app: &TestApp) -> Connector {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(app.dev_cert()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    Connector::Rustls(Arc::new(config))
}

/// Opens `wss://.../ws` (plus `query`), offering `protocols` and sending `origin`.
pub async fn open(app: &TestApp, query: &str, protocols: &[&str], origin: Option<&str>) -> Result<WsClient, Error> {
    let url = format!("wss://localhost:{}/ws{query}", app.address.port());
    let mut request = url.into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(&protocols.join(", ")).unwrap());
    }
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    let (stream, response) = connect_async_tls_with_config(request, None, true, Some(connector(app))).await?;
    let protocol = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
    Ok(WsClient { stream, protocol })
}

/// Opens a socket and authenticates with a first `auth` frame; returns it after the welcome.
pub async fn signed_in(app: &TestApp, token: &str) -> WsClient {
    let mut client = open(app, "", &["confidant.v1"], None).await.unwrap();
    client.send(serde_json::json!({ "v": 1, "type": "auth", "token": token })).await;
    let welcome = client.frame().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    client
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    /// Writes `texts` as one burst: all queued, then flushed together, so the server reads many
    /// frames at once.
    pub async fn send_burst(&mut self, texts: impl IntoIterator<Item = String>) {
        for text in texts {
            self.stream.feed(Message::Text(text.into())).await.unwrap();
        }
        self.stream.flush().await.unwrap();
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// The next frame or close within `wait` (pings are answered by tungstenite itself).
    pub async fn next(&mut self, wait: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Event::Nothing,
                Ok(None) => return Event::Closed(None),
                Ok(Some(Err(_))) => return Event::Closed(None),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => return Event::Frame(serde_json::from_str(&text).unwrap()),
                Message::Close(frame) => return Event::Closed(frame.map(|f| u16::from(f.code))),
                _ => continue,
            }
        }
    }

    /// The next frame, which must come within 10 s.
    pub async fn frame(&mut self) -> Value {
        match self.next(Duration::from_secs(10)).await {
            Event::Frame(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Waits for the close and returns its code.
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        loop {
            match self.next(wait).await {
                Event::Frame(_) => continue,
                Event::Closed(code) => return code,
                Event::Nothing => panic!("the socket did not close within {wait:?}"),
            }
        }
    }
}
