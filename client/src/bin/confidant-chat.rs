//! `confidant-chat`: chat from a terminal over Confidant's end-to-end encrypted messaging.
//!
//! ```text
//! confidant-chat --server https://localhost:8443 --ca data/tls/dev-cert.pem \
//!     --email me@example.org --state ~/.confidant/device.state [--patient ID | --staff] [--with USER_ID ...] \
//!     [--save-to DIR]
//! ```
//! The password (and a TOTP code, when asked) is read from standard input; the state file's key
//! from `CONFIDANT_CHAT_KEY` (64 hex digits). With `--patient` (a conversation about that
//! patient) or `--staff` (among staff), and `--with`, it starts a conversation; otherwise it
//! joins what it is invited to. Lines typed are sent to the newest conversation; messages
//! received are printed as they arrive. A line `/file PATH [text]` sends that file (an image or a
//! PDF), encrypted, with the text; files received are checked, decrypted and saved in `--save-to`
//! (the current directory by default) as `<attachment id>-<name>`.
#![allow(clippy::print_stdout)] // a terminal program

use std::path::{Path, PathBuf};
use std::time::Duration;

use confidant_client::{Api, AttachmentRef, ClientError, ConversationKind, Device, Event, Server};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

struct Options {
    server: String,
    ca: PathBuf,
    email: String,
    state: PathBuf,
    /// The conversation to start, if any.
    start: Option<ConversationKind>,
    with: Vec<Uuid>,
    /// Where received files are saved.
    save_to: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut server, mut ca, mut email, mut state, mut patient, mut with) = (None, None, None, None, None, Vec::new());
    let mut staff = false;
    let mut save_to = PathBuf::from(".");
    while let Some(flag) = args.next() {
        if flag == "--staff" {
            staff = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" => server = Some(value),
            "--ca" => ca = Some(PathBuf::from(value)),
            "--email" => email = Some(value),
            "--state" => state = Some(PathBuf::from(value)),
            "--patient" => patient = Some(value.parse().map_err(|_| "--patient is not a UUID")?),
            "--with" => with.push(value.parse().map_err(|_| "--with is not a UUID")?),
            "--save-to" => save_to = PathBuf::from(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let start = match (patient, staff) {
        (Some(patient), false) => Some(ConversationKind::Care(patient)),
        (None, true) => Some(ConversationKind::Staff),
        (None, false) => None,
        (Some(_), true) => return Err("--patient and --staff exclude each other".into()),
    };
    Ok(Options {
        server: server.ok_or("--server is required")?,
        ca: ca.ok_or("--ca is required")?,
        email: email.ok_or("--email is required")?,
        state: state.ok_or("--state is required")?,
        start,
        with,
        save_to,
    })
}

/// The media type a file's extension implies: images and PDF, or bytes.
fn media_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Sends the file `line` names (`/file PATH [text]`) to `conversation`.
async fn send_file(
    device: &mut Device,
    api: &Api,
    socket: &mut confidant_client::Connection,
    conversation: Uuid,
    line: &str,
) -> Result<(), String> {
    let mut parts = line.splitn(2, ' ');
    let path = PathBuf::from(parts.next().unwrap_or_default());
    let text = parts.next().unwrap_or_default();
    let file = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("attachment");
    device
        .send_attachment(api, socket, conversation, text, &file, name, media_type(&path))
        .await
        .map_err(|e| e.to_string())?;
    println!("sent {name} ({} bytes)", file.len());
    Ok(())
}

/// Downloads, checks, decrypts and saves `attachment` in `dir`, under a name no sender can turn
/// into a path elsewhere.
async fn save_file(device: &Device, api: &Api, attachment: &AttachmentRef, dir: &Path) -> Result<PathBuf, String> {
    let file = device.download_attachment(api, attachment).await.map_err(|e| e.to_string())?;
    let safe: String = attachment
        .name
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let path = dir.join(format!("{}-{}", attachment.id, safe.trim_start_matches('.')));
    std::fs::write(&path, file.as_slice()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn state_key() -> Result<[u8; 32], String> {
    let hex = std::env::var("CONFIDANT_CHAT_KEY").map_err(|_| "set CONFIDANT_CHAT_KEY (64 hex digits)")?;
    let mut key = [0u8; 32];
    if hex.len() != 64 {
        return Err("CONFIDANT_CHAT_KEY must be 64 hex digits".into());
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| "CONFIDANT_CHAT_KEY is not hex")?;
    }
    Ok(key)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("confidant-chat: {error}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: confidant-chat --server https://HOST:PORT --ca CERT.pem --email EMAIL --state FILE \
[--patient PATIENT_ID | --staff] [--with USER_ID ...] [--save-to DIR]
A line `/file PATH [text]` sends that file; received files are saved in DIR (default: here).
The password (and a TOTP code when asked) is read from standard input; CONFIDANT_CHAT_KEY (64 hex digits)
is the key of the state file.";

async fn run() -> Result<(), String> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = options().map_err(|e| format!("{e}\n{USAGE}"))?;
    let key = state_key()?;
    let ca = std::fs::read(&options.ca).map_err(|e| format!("cannot read {}: {e}", options.ca.display()))?;
    let server = Server::new(&options.server, &ca).map_err(|e| e.to_string())?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    println!("password:");
    let password = stdin.next_line().await.map_err(|e| e.to_string())?.unwrap_or_default();
    let api = match server.sign_in(&options.email, &password, None).await {
        Err(ClientError::MfaRequired) => {
            println!("TOTP code:");
            let code = stdin.next_line().await.map_err(|e| e.to_string())?.unwrap_or_default();
            server.sign_in(&options.email, &password, Some(code.trim())).await
        }
        other => other,
    }
    .map_err(|e| e.to_string())?;
    let mut device = if options.state.exists() {
        Device::load(&options.state, &key).map_err(|e| e.to_string())?
    } else {
        let mut device = Device::register(&api).await.map_err(|e| e.to_string())?;
        device.use_state_file(&options.state, &key);
        device
    };
    device.save(&options.state, &key).await.map_err(|e| e.to_string())?;
    let mut socket = device.connect(&api).await.map_err(|e| e.to_string())?;
    let mut current = device.conversations().last().copied();
    if let Some(kind) = options.start {
        let id = device.create_conversation(&api, &mut socket, kind, &options.with).await.map_err(|e| e.to_string())?;
        println!("started conversation {id}");
        current = Some(id);
    }
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Some(line) = line.map_err(|e| e.to_string())? else { break };
                let Some(conversation) = current else {
                    println!("(no conversation yet)");
                    continue;
                };
                if let Some(rest) = line.strip_prefix("/file ") {
                    if let Err(error) = send_file(&mut device, &api, &mut socket, conversation, rest.trim()).await {
                        println!("(not sent: {error})");
                    }
                    continue;
                }
                device.send(&mut socket, conversation, line.as_bytes()).await.map_err(|e| e.to_string())?;
            }
            event = device.next_event(&mut socket, Duration::from_millis(500)) => {
                match event.map_err(|e| e.to_string())? {
                    Some(Event::Joined { conversation }) => {
                        println!("joined conversation {conversation}");
                        current = Some(conversation);
                    }
                    Some(Event::Message { sender_device, text, attachments, .. }) => {
                        println!("[{sender_device}] {}", String::from_utf8_lossy(&text));
                        for attachment in &attachments {
                            match save_file(&device, &api, attachment, &options.save_to).await {
                                Ok(path) => println!("  saved {} ({} bytes)", path.display(), attachment.size),
                                Err(error) => println!("  (attachment {} not saved: {error})", attachment.id),
                            }
                        }
                    }
                    Some(Event::Removed { conversation }) => println!("removed from {conversation}"),
                    Some(Event::Failed { seq, reason, .. }) => println!("(message {seq} unreadable: {reason})"),
                    Some(Event::Changed { .. }) | None => {}
                }
            }
        }
        device.save(&options.state, &key).await.map_err(|e| e.to_string())?;
    }
    // Saves the state, then acknowledges what was read since the last acknowledgement.
    device.flush_acks(&mut socket).await.map_err(|e| e.to_string())?;
    device.save(&options.state, &key).await.map_err(|e| e.to_string())?;
    socket.close().await;
    Ok(())
}
