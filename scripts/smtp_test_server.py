"""SMTP sink for the reminder tests (see scripts/smtp-test-server).

Each accepted message is written to MAILDIR/<n>.eml (the raw bytes received) with
MAILDIR/<n>.json beside it: whether the session was under TLS, the TLS version, the envelope.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        ssl_object = server.transport.get_extra_info("ssl_object")
        self.count += 1
        base = os.path.join(self.maildir, f"{self.count:04d}")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {
            "tls": ssl_object is not None,
            "tls_version": ssl_object.version() if ssl_object else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--mode", choices=["starttls", "implicit", "plain"], default="starttls")
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    sink = Sink(args.maildir)
    loop = asyncio.get_running_loop()
    if args.mode == "starttls":
        factory = lambda: SMTP(sink, hostname="localhost", tls_context=context, require_starttls=True)
        server = await loop.create_server(factory, "127.0.0.1", 0)
    elif args.mode == "implicit":
        factory = lambda: SMTP(sink, hostname="localhost")
        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=context)
    else:
        factory = lambda: SMTP(sink, hostname="localhost")
        server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
